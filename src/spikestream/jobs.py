"""What the CLI's commands do, as plain library functions (the CLI only parses and prints).

Each job returns the ``report.json`` dictionary it wrote (DESIGN.md §4).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from spikestream import __version__, ir
from spikestream._progress import progress, status
from spikestream.encoding import ENCODINGS, make_encoding
from spikestream.engine import KeyframePolicy, Stream
from spikestream.errors import InputError
from spikestream.report import write_report


@dataclass(frozen=True)
class RunOptions:
    """Options of ``spikestream run`` (and of the demo)."""

    encoding: str = "sigma-delta"  # one of spikestream.encoding.ENCODINGS
    threshold: float = 0.05  # θ of sigma-delta nodes (and of the frame-delta encoder)
    steps: int | None = None  # time steps per frame for direct/rate/radix/latency (None: encoder default)
    backend: str = "dense"
    frames: int | None = None  # stop after this many frames (None: the whole video)
    keyframe_every: int | None = None  # mark a keyframe every K frames (None: never)
    tile: tuple[int, int] = (16, 16)  # output tile size for per-tile work
    save_trace: bool = True


def resolve_model(spec: str) -> tuple[ir.Graph, str]:
    """A model given as a path to a ``.nir`` file or as a zoo name -> (graph, description)."""
    from spikestream.frontend import from_torch, load_nir
    from spikestream.models import MODELS

    if spec in MODELS:
        entry = MODELS[spec]
        return from_torch(entry.build(), entry.input_shape), spec
    path = Path(spec)
    if path.suffix == ".nir" or path.exists():
        if not path.exists():
            raise InputError(f"cannot read model {spec!r}: no such file")
        return load_nir(path), str(path)
    raise InputError(f"unknown model {spec!r}: not a .nir file and not one of the zoo models: "
                     f"{', '.join(sorted(MODELS))}")


def prepare_graph(graph: ir.Graph, options: RunOptions) -> ir.Graph:
    """Apply the conversion an encoding needs (sigma-delta nodes for the sigma-delta encoding)."""
    from spikestream.passes import to_sigma_delta

    if options.encoding == "sigma-delta":
        return to_sigma_delta(graph, threshold=options.threshold)
    return graph


def make_run_encoding(options: RunOptions):
    if options.encoding not in ENCODINGS:
        raise InputError(f"unknown encoding {options.encoding!r}; choose one of: {', '.join(sorted(ENCODINGS))}")
    kwargs = {}
    if options.steps is not None:
        kwargs["steps"] = options.steps
    if options.encoding == "frame-delta":
        kwargs["threshold"] = options.threshold
    try:
        return make_encoding(options.encoding, **kwargs)
    except TypeError as error:
        raise InputError(f"encoding {options.encoding!r} does not take these options: {error}") from None


def stream_frames(graph: ir.Graph, frames: Iterable, options: RunOptions, total: int | None,
                  description: str) -> tuple[Stream, list[np.ndarray], float]:
    """Run frames through a Stream with a progress bar; returns the stream, outputs and wall time."""
    stream = Stream(graph, make_run_encoding(options), backend=options.backend,
                    keyframe=KeyframePolicy(options.keyframe_every), tile=options.tile)
    outputs = []
    start = time.perf_counter()
    for frame in progress(frames, total=total, description=description):
        outputs.append(stream.process(frame))
        if options.frames is not None and len(outputs) >= options.frames:
            break
    return stream, outputs, time.perf_counter() - start


def build_report(command: str, input_name: str, model: str, stream: Stream, wall_s: float, **extra) -> dict:
    trace = stream.trace
    report = {
        "command": command,
        "version": __version__,
        "input": input_name,
        "model": model,
        "encoding": stream.encoding.name,
        "steps": stream.encoding.steps,
        "backend": stream.trace.metadata.get("backend"),
        "frames": trace.frames,
        "wall_s": wall_s,
        "fps": trace.frames / wall_s if wall_s > 0 else None,
        "layers": trace.layer_summary(),
        "totals": trace.totals(),
    }
    report.update(extra)
    return report


def _video_frames(video: str, graph: ir.Graph, limit: int | None):
    from spikestream.data import read_frames

    channels, height, width = graph.input_shape if len(graph.input_shape) == 3 else (None, None, None)
    if channels is None:
        raise InputError(f"video input needs a model with a (C, H, W) input, this one takes {graph.input_shape}")
    path = Path(video)
    size = None if path.suffix == ".npy" else (width, height)  # arrays are taken as they are
    return (f.image for f in read_frames(path, size=size, grayscale=channels == 1, max_frames=limit))


def run_video(video: str, model: str, out: str | os.PathLike, options: RunOptions = RunOptions()) -> dict:
    """``spikestream run``: stream a video (or a .npy frame array) through a model, write report.json."""
    graph, model_name = resolve_model(model)
    graph = prepare_graph(graph, options)
    frames = _video_frames(video, graph, options.frames)
    stream, _, wall_s = stream_frames(graph, frames, options, options.frames, f"run {Path(video).name}")
    if stream.trace.frames == 0:
        raise InputError(f"no frames could be read from {video!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"threshold": options.threshold}
    if options.save_trace:
        extra["trace"] = str(stream.trace.save(out / "trace.npz"))
    report = build_report("run", str(video), model_name, stream, wall_s, **extra)
    write_report(out, report)
    return report


def demo(out: str | os.PathLike, frames: int = 60, options: RunOptions = RunOptions()) -> dict:
    """``spikestream demo``: a synthetic moving-objects clip through a small sigma-delta network."""
    from spikestream.data import moving_objects_clip
    from spikestream.models import MODELS

    entry = MODELS["tiny-seg"]
    graph = prepare_graph(resolve_model(entry.name)[0], options)
    _, height, width = entry.input_shape
    clip = moving_objects_clip(frames=frames, height=height, width=width, seed=0)
    status(f"demo: {frames} synthetic frames ({width}x{height}) through {entry.name} as a sigma-delta network "
           f"(θ = {options.threshold}); the weights are {'trained' if entry.trained else 'untrained (seeded)'}")
    stream, _, wall_s = stream_frames(graph, clip.frames, options, frames, "demo")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"threshold": options.threshold, "trace": str(stream.trace.save(out / "trace.npz"))}
    report = build_report("demo", f"synthetic:moving-objects(frames={frames}, seed=0)", entry.name, stream,
                          wall_s, **extra)
    write_report(out, report)
    return report


def train(model: str, out: str | os.PathLike | None = None, seed: int = 0) -> dict:
    """``spikestream train NAME``: rerun the recipe that produced a zoo model's shipped weights."""
    from spikestream.models import WEIGHTS_DIR, get_model

    entry = get_model(model)
    if entry.train is None or entry.weights is None:
        raise InputError(f"model {model!r} has no training recipe (it ships seeded, untrained weights)")
    path = Path(out) if out is not None else WEIGHTS_DIR / entry.weights
    start = time.perf_counter()
    metrics = entry.train(path, seed=seed)
    return {"model": model, "weights": str(path), "seed": seed, "wall_s": time.perf_counter() - start, **metrics}


def info() -> dict:
    """``spikestream info``: version, compute devices, optional tools and where data is found."""
    from spikestream.data import data_locations

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    return {
        "version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "devices": devices,
        "threads": torch.get_num_threads(),
        "encodings": sorted(ENCODINGS),
        "data": data_locations(),
    }
