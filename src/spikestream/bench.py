"""``spikestream bench``: the same network on the same frames, timed side by side in one run.

Rows (DESIGN.md §4): PyTorch dense ANN per frame (eager), the same with torch.compile, spikestream
dense sigma-delta, spikestream sparse sigma-delta one frame at a time and pipelined (two frames in
flight on two threads: throughput, at the same latency per frame), and the equivalent direct-encoded
SNN in snnTorch and in SpikingJelly (ReLU replaced by integrate-and-fire neurons, T steps per frame),
which is what SNN users would otherwise run. Every row consumes frames already decoded and preprocessed, so only
the network is timed.

Timing on a shared machine: every row is timed ``rounds`` times, the rows taking turns (round 1 of
every row, then round 2, ...), and each row keeps its fastest pass. A neighbour's burst of work then
slows one pass of one row instead of deciding a ratio: PyTorch's two-thread rows in particular
swing by 2x from one pass to the next when another process wakes on the second core.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from spikestream import __version__
from spikestream._progress import progress, status
from spikestream.engine import PLANNING_FRAMES, Stream
from spikestream.errors import InputError
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta

WARM_UP_FRAMES = 3  # processed, then reset, before a stream row is timed
PIPELINED_ROW = "spikestream-sparse-sd-pipelined"
STREAM_ROWS = (("spikestream-dense-sd", "dense", False), ("spikestream-sparse-sd", "sparse", False),
               (PIPELINED_ROW, "sparse", True))  # (row, backend, pipelined)


@dataclass(frozen=True)
class BenchOptions:
    model: str = "seg-motion"  # zoo model name
    video: str = "vtest.avi"  # a path, or the name of a sample video
    frames: int = 300
    threshold: float = 0.05  # sigma-delta θ
    snn_steps: int = 4  # T of the direct-encoded snnTorch / SpikingJelly rows
    snn_frames: int = 30  # those rows are slow: timed on the first frames only
    compile: bool = True  # include the torch.compile row
    external_snns: bool = True  # include the snnTorch and SpikingJelly rows
    device: str = "cpu"  # "cuda" runs the PyTorch and dense rows on the GPU (TF32 off); sparse stays on CPU
    threads: int | None = None  # torch threads (None: torch's default)
    rounds: int = 3  # timed passes per row, taken in turn; each row keeps its fastest


@dataclass
class Row:
    name: str
    fps: float
    speedup_vs_eager: float | None = None
    synops_over_dense_macs: float | None = None
    efficiency: float | None = None  # achieved speedup ÷ ideal speedup (dense MACs ÷ synops)
    max_abs_diff: float | None = None  # vs the eager ANN's outputs on the same frames
    frames: int = 0
    note: str = ""
    outputs: np.ndarray | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "outputs"}


def load_model_frames(model: str, video: str, count: int) -> tuple[nn.Module, object, list[np.ndarray]]:
    """The zoo module and ``count`` frames of ``video`` prepared as the model's inputs (float32 (C, H, W))."""
    from pathlib import Path

    from spikestream.data import find_sample_video, read_frames
    from spikestream.models import get_model

    entry = get_model(model)
    _, height, width = entry.input_shape
    path = Path(video) if Path(video).exists() else find_sample_video(video)
    frames = (f.image for f in read_frames(path, size=(width, height), grayscale=True, max_frames=count))
    if entry.preprocess is not None:
        frames = entry.preprocess(frames)
    prepared = []
    for frame in frames:
        array = np.asarray(frame)
        array = array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)
        prepared.append(array.reshape(entry.input_shape))
    if not prepared:
        raise InputError(f"no frames could be read from {video!r}")
    return entry.build(), entry, prepared


TimedPass = Callable[[], tuple[float, np.ndarray]]  # one timed pass over the frames: (seconds, outputs)


def _frames_pass(step: Callable[[torch.Tensor], torch.Tensor], frames: list[torch.Tensor], description: str,
                 synchronize: Callable[[], None] = lambda: None) -> TimedPass:
    """A timed pass of ``step`` over ``frames``, after one untimed warm-up call (allocations, kernels)."""
    with torch.inference_mode():
        step(frames[0])
    synchronize()

    def timed_pass() -> tuple[float, np.ndarray]:
        outputs = []
        with torch.inference_mode():
            start = time.perf_counter()
            for frame in progress(frames, total=len(frames), description=description):
                outputs.append(step(frame))
            synchronize()
            elapsed = time.perf_counter() - start
        return elapsed, np.stack([o.detach().float().cpu().numpy() for o in outputs])

    return timed_pass


def _best_of_rounds(passes: dict[str, TimedPass], rounds: int) -> dict[str, tuple[float, np.ndarray]]:
    """Each pass run ``rounds`` times, in turn; per name the fastest time and the last outputs."""
    best: dict[str, tuple[float, np.ndarray]] = {}
    for _ in range(rounds):
        for name, timed_pass in passes.items():
            elapsed, outputs = timed_pass()
            best[name] = (min(elapsed, best[name][0]) if name in best else elapsed, outputs)
    return best


def spiking_copy(module: nn.Module, neuron_factory: Callable[[], nn.Module]) -> nn.Module:
    """The same network with every ReLU (module or function) replaced by a fresh spiking neuron module."""
    graph_module = torch.fx.symbolic_trace(module)
    count = 0
    for node in list(graph_module.graph.nodes):
        is_relu = (node.op == "call_function" and node.target in (torch.relu, nn.functional.relu)) or (
            node.op == "call_method" and node.target == "relu") or (
            node.op == "call_module" and isinstance(graph_module.get_submodule(node.target), nn.ReLU))
        if is_relu:
            name = f"spiking_neuron_{count}"
            count += 1
            graph_module.add_submodule(name, neuron_factory())
            with graph_module.graph.inserting_after(node):
                replacement = graph_module.graph.call_module(name, (node.args[0],))
            node.replace_all_uses_with(replacement)
            graph_module.graph.erase_node(node)
    graph_module.recompile()
    return graph_module.eval()


def _snn_passes(module: nn.Module, frames: list[torch.Tensor], steps: int) -> tuple[dict[str, TimedPass], dict]:
    """Timed passes of the direct-encoded SNN rows (each frame presented for ``steps`` steps, state reset
    between frames), and {row name: note}; a row whose library is missing has no pass."""
    passes, notes = {}, {}
    try:
        import snntorch
        from snntorch import utils as snntorch_utils

        network = spiking_copy(module, lambda: snntorch.Leaky(beta=1.0, threshold=1.0, init_hidden=True,
                                                              reset_mechanism="subtract"))

        def snntorch_step(frame, network=network):
            snntorch_utils.reset(network)
            return torch.stack([network(frame[None]) for _ in range(steps)]).mean(0)[0]

        passes["snntorch-direct-snn"] = _frames_pass(snntorch_step, frames, "snntorch")
        notes["snntorch-direct-snn"] = (f"snnTorch {snntorch.__version__}, Leaky(beta=1) = IF, T={steps}, "
                                        "untuned thresholds")
    except ImportError as error:
        notes["snntorch-direct-snn"] = f"not installed: {error}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from spikingjelly.activation_based import functional, neuron
        network = spiking_copy(module, lambda: neuron.IFNode(v_threshold=1.0, v_reset=None, step_mode="s"))

        def spikingjelly_step(frame, network=network):
            functional.reset_net(network)
            return torch.stack([network(frame[None]) for _ in range(steps)]).mean(0)[0]

        passes["spikingjelly-direct-snn"] = _frames_pass(spikingjelly_step, frames, "spikingjelly")
        notes["spikingjelly-direct-snn"] = f"SpikingJelly IFNode (soft reset), T={steps}, untuned thresholds"
    except ImportError as error:
        notes["spikingjelly-direct-snn"] = f"not installed: {error}"
    return passes, notes


def _stream_pass(name: str, graph, frames: list[np.ndarray], backend: str, device: str,
                 pipeline: bool = False, calibration: dict | None = None) -> tuple[TimedPass, Stream]:
    """A timed pass of a spikestream stream over ``frames``, from rest each time (the Trace cleared).
    A pipelined stream is iterated (``stream(frames)``), so that two frames are in flight; its warm-up
    also profiles it and chooses where to cut it. ``calibration``: another sparse stream's, so that both
    make the same dense-or-sparse decisions (by default the stream measures its own)."""
    stream = Stream(graph, "sigma-delta", backend=backend, record_work=False, pipeline=pipeline,
                    calibrate=True if calibration is None else calibration,
                    device=device if backend == "dense" else "cpu")
    warm_up = frames[:PLANNING_FRAMES] if pipeline else frames[:WARM_UP_FRAMES]
    for _ in stream(warm_up):  # the first frame runs densely, later ones the sparse kernels (compiled on first use)
        pass

    def timed_pass() -> tuple[float, np.ndarray]:
        stream.reset(clear_trace=True)
        start = time.perf_counter()
        outputs = list(stream(progress(frames, total=len(frames), description=name)))
        return time.perf_counter() - start, np.stack(outputs)

    return timed_pass, stream


def run_bench(options: BenchOptions = BenchOptions()) -> dict:
    """Time every row on the same frames; returns the report dict (with ``rows``)."""
    if int(options.rounds) != options.rounds or options.rounds < 1:
        raise InputError(f"rounds must be a positive integer, not {options.rounds!r}")
    if options.threads:
        torch.set_num_threads(options.threads)
    device = torch.device(options.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError("--device cuda asked for, but torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False  # an fp32 baseline, not TF32
        torch.backends.cudnn.allow_tf32 = False
    module, entry, frames = load_model_frames(options.model, options.video, options.frames)
    status(f"bench: {len(frames)} frames of {options.video} at {entry.input_shape} through {entry.name}, "
           f"θ = {options.threshold}, {torch.get_num_threads()} threads, device {device}")
    tensors = [torch.from_numpy(f) for f in frames]
    module = module.to(device)

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def eager(frame):
        return module(frame.to(device, non_blocking=True)[None])[0]

    passes: dict[str, TimedPass] = {"pytorch-eager-ann": _frames_pass(eager, tensors, "eager ANN", synchronize)}
    notes = {"pytorch-eager-ann": "torch " + torch.__version__}
    if options.compile:
        compiled = torch.compile(module)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(tensors[0].to(device)[None])
        compile_s = time.perf_counter() - start

        def compiled_step(frame):
            return compiled(frame.to(device, non_blocking=True)[None])[0]

        passes["pytorch-compile-ann"] = _frames_pass(compiled_step, tensors, "compiled ANN", synchronize)
        notes["pytorch-compile-ann"] = f"torch.compile (inductor), compile time {compile_s:.1f} s excluded"
    graph = to_sigma_delta(from_torch(module.cpu(), entry.input_shape), threshold=options.threshold)
    module.to(device)
    streams = {}  # by row name
    for name, backend, pipeline in STREAM_ROWS:
        calibration = streams["spikestream-sparse-sd"].calibration if pipeline else None  # the same decisions
        passes[name], streams[name] = _stream_pass(name, graph, frames, backend, options.device, pipeline,
                                                   calibration)
    plan = streams[PIPELINED_ROW].pipeline_plan
    if plan is None:
        notes[PIPELINED_ROW] = "not pipelined: too few frames to profile it on, or no place to cut the graph"
    else:
        notes[PIPELINED_ROW] = (f"two frames at once on two threads, cut after {plan.after} (of "
                                f"{len(plan.trials)} cuts tried; one at a time its stages took {plan.stage_ms[0]:.2f} "
                                f"and {plan.stage_ms[1]:.2f} ms); latency per frame is the sparse row's")
    if options.external_snns:
        snn_passes, snn_notes = _snn_passes(module.cpu(), tensors[:options.snn_frames], options.snn_steps)
        passes.update(snn_passes)
        notes.update(snn_notes)
    timed = _best_of_rounds(passes, options.rounds)
    reference = timed["pytorch-eager-ann"][1]
    rows: list[Row] = []
    for name in [*passes, *(n for n in notes if n not in passes)]:
        if name not in timed:  # a library that is not installed
            rows.append(Row(name, float("nan"), note=notes[name]))
            continue
        elapsed, outputs = timed[name]
        count = len(outputs)
        row = Row(name, count / elapsed, frames=count, note=notes.get(name, ""), outputs=outputs,
                  max_abs_diff=float(np.abs(outputs - reference[:count]).max()))
        if name.startswith("pytorch"):
            row.synops_over_dense_macs = 1.0
        elif name in streams:
            row.synops_over_dense_macs = streams[name].trace.totals()["activity"]
        rows.append(row)
    eager_fps = rows[0].fps
    for row in rows:
        row.speedup_vs_eager = row.fps / eager_fps if np.isfinite(row.fps) else None
        if row.synops_over_dense_macs and row.name.startswith("spikestream") and row.speedup_vs_eager:
            row.efficiency = row.speedup_vs_eager * row.synops_over_dense_macs  # achieved ÷ (MACs / synops)
    sparse_stream = streams["spikestream-sparse-sd"]
    return {
        "command": "bench",
        "version": __version__,
        "input": options.video,
        "model": options.model,
        "encoding": "sigma-delta",
        "threshold": options.threshold,
        "frames": len(frames),
        "device": str(device),
        "threads": torch.get_num_threads(),
        "rounds": options.rounds,
        "crossovers": sparse_stream.crossovers,
        "pipeline": plan.as_dict() if plan else None,
        "layers": sparse_stream.trace.layer_summary(),
        "totals": sparse_stream.trace.totals(),
        "rows": [row.as_dict() for row in rows],
        "_outputs": {row.name: row.outputs for row in rows if row.outputs is not None},
    }


def markdown_table(rows: list[dict]) -> str:
    def cell(value, digits=2):
        if value is None or (isinstance(value, float) and not np.isfinite(value)):
            return "–"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = ["| row | frames/s | speedup vs eager | synops / dense MACs | efficiency | max output diff | note |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(f"| {row['name']} | {cell(row['fps'], 1)} | {cell(row['speedup_vs_eager'])} | "
                     f"{cell(row['synops_over_dense_macs'], 3)} | {cell(row['efficiency'])} | "
                     f"{cell(row['max_abs_diff'], 4)} | {row['note']} |")
    return "\n".join(lines)
