"""Streaming execution of a graph over video frames, and time-stepped simulation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spikestream import ir
from spikestream.encoding import Encoding, make_encoding
from spikestream.engine._backends import make_backend
from spikestream.engine._counting import LayerCount, LayerCounter
from spikestream.engine._executor import GraphExecutor, StepResult
from spikestream.engine._frames import FrameShapeError, as_frame
from spikestream.engine._pipeline import PipelinePlan, can_pipeline, pipelined
from spikestream.engine._radix import RadixExecutor, output_scale, radix_bits, radix_frame_counts
from spikestream.engine._sparse import SparseWire
from spikestream.engine._trace import Trace
from spikestream.errors import InputError

MaskSource = np.ndarray | Tensor | Callable[[int, Tensor], np.ndarray | Tensor]


@dataclass(frozen=True)
class KeyframePolicy:
    """Which frames are keyframes. On a keyframe the Trace is marked (schedulers re-profile there)
    and, with ``refresh``, the stream state is cleared so the full frame is sent once, like a
    video codec's I-frame; that bounds drift and shows the cost of a scene cut."""

    every: int | None = None  # a keyframe every K frames, frame 0 included; None: never
    refresh: bool = False

    def __post_init__(self):
        if self.every is not None and (int(self.every) != self.every or self.every < 1):
            raise ValueError(f"keyframe interval must be a positive integer, not {self.every!r}")

    def is_keyframe(self, index: int) -> bool:
        return self.every is not None and index % self.every == 0


class TraceRecorder:
    """Counts the events arriving at every synaptic layer of a graph and keeps them in a Trace."""

    def __init__(self, graph: ir.Graph, tile: tuple[int, int] = (16, 16), record_work: bool = True,
                 device: torch.device | str = "cpu", metadata: dict | None = None):
        self.layers = graph.synaptic_layers()
        self.sources = [graph.predecessors(layer)[0] for layer in self.layers]
        self.counters = [LayerCounter(graph.nodes[layer], graph.shapes[source], graph.shapes[layer], tile, device)
                         for layer, source in zip(self.layers, self.sources, strict=True)]
        self.trace = Trace(self.layers, [graph.nodes[n].kind for n in self.layers],
                           [c.dense_macs for c in self.counters], tile, record_work, metadata)

    def count(self, step: StepResult, totals: list[LayerCount] | None) -> list[LayerCount]:
        """Add one time step's counts to the running totals of the current frame."""
        counts = [self.count_layer(i, step.wires) for i in range(len(self.counters))]
        if totals is None:
            return counts
        return [LayerCount(*(x + y for x, y in zip(a, b, strict=True))) for a, b in zip(totals, counts, strict=True)]

    def count_layer(self, index: int, wires: dict) -> LayerCount:
        """One time step's counts of synaptic layer ``index``, from the wires of a step."""
        counter, wire = self.counters[index], wires[self.sources[index]]
        work = self.trace.record_work
        if isinstance(wire, SparseWire):
            return counter.count(wire.dense()) if work else counter.count_rows(wire.position_rows, wire.value_rows,
                                                                               wire.block)
        return counter.count(wire, work=work)


class Stream:
    """Runs a graph frame by frame, keeping state across frames, and records a Trace.

    >>> stream = Stream(graph, encoding="sigma-delta")
    >>> for output in stream(frames): ...
    >>> stream.trace.totals()

    With ``pipeline=True`` and the sparse backend, iterating (``stream(frames)``) runs two frames at
    once on two threads, split into two stages where that balances them (``engine._pipeline``): the
    same outputs and Trace, more frames per second, the same latency per frame. ``process`` always
    runs one frame at a time.
    """

    def __init__(self, graph: ir.Graph, encoding: str | Encoding = "sigma-delta", backend: str = "dense",
                 mask: MaskSource | None = None, keyframe: int | KeyframePolicy | None = None, *,
                 tile: tuple[int, int] = (16, 16), record_work: bool = True, count: bool = True,
                 calibrate: bool | dict[str, dict[str, float]] = True, pipeline: bool = False,
                 device: torch.device | str = "cpu"):
        self.graph = graph
        self.encoding = make_encoding(encoding) if isinstance(encoding, str) else encoding
        self.backend = make_backend(backend, graph, device)
        # the sparse backend measures, per layer, where dense execution becomes faster
        # (or takes what another stream measured: ``calibrate=other.calibration``, for identical decisions)
        if isinstance(calibrate, dict):
            self.crossovers = self.backend.use_calibration(calibrate) if calibrate else {}
        else:
            self.crossovers = self.backend.calibrate() if calibrate and hasattr(self.backend, "calibrate") else {}
        self.calibration = dict(getattr(self.backend, "calibration", {}))
        self.device = torch.device(device)
        self.keyframe = keyframe if isinstance(keyframe, KeyframePolicy) else KeyframePolicy(keyframe)
        self.mask = mask
        self.count = count
        self.input_shape = graph.input_shape
        self._gated = [name for name in graph.neuron_layers() if graph.nodes[name].kind == "SigmaDelta"
                       and graph.predecessors(name)[0] in graph.input_names]
        if mask is not None and not self._gated:
            raise InputError("a mask gates the input layer's delta events, but this graph has no SigmaDelta "
                             "node after its input; convert it with spikestream.passes.to_sigma_delta")
        self.recorder = TraceRecorder(graph, tile, record_work, self.device,
                                      {"encoding": self.encoding.name, "steps": self.encoding.steps,
                                       "backend": backend})
        self.trace = self.recorder.trace
        quantized = self.encoding.name == "radix" and radix_bits(graph) is not None
        self.radix = RadixExecutor(graph, self.encoding.steps, device) if quantized else None  # integer reference
        self.pipeline = pipeline
        self.pipeline_plan: PipelinePlan | None = None  # the measured cut, once a pipelined iteration chose it
        self.reset()

    def reset(self, clear_trace: bool = False) -> None:
        """Clear all network and encoder state; the Trace is kept unless ``clear_trace``."""
        if clear_trace:
            old = self.trace
            self.trace = self.recorder.trace = Trace(old.layers, old.kinds, old.dense_macs, old.tile,
                                                     old.record_work, old.metadata)
        self.backend.reset(1)
        self.encoder_state = self.encoding.init_state(self.input_shape)
        self.frame_index = 0
        self.last_step: StepResult | None = None  # values and wires of the latest time step, for probes

    def encode(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor] | None]:
        """A frame (from ``as_frame``) as the network's inputs (T, *input_shape), advancing the
        encoder's state, and the current frame's gates (``gates``)."""
        steps, self.encoder_state = self.encoding.encode(x, self.encoder_state)
        return steps, self.gates(x)

    def gates(self, x: Tensor) -> dict[str, Tensor] | None:
        """The mask of the current frame as gates of the input sigma-delta nodes ({node: (1, 1, H, W)}),
        or None without a mask."""
        if self.mask is None:
            return None
        mask = self.mask(self.frame_index, x) if callable(self.mask) else self.mask
        mask = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask)
        if tuple(mask.shape) != tuple(self.input_shape[-2:]):
            raise FrameShapeError(f"mask of shape {tuple(mask.shape)} does not fit the frame size "
                                  f"{tuple(self.input_shape[-2:])}")
        gate = mask.to(torch.float32, copy=True).to(self.device)[None, None]  # (1, 1, H, W), broadcast on C
        return dict.fromkeys(self._gated, gate)

    def process(self, frame) -> np.ndarray:
        """Run one frame through the network; returns the decoded output (*output_shape)."""
        x = as_frame(frame, self.input_shape).to(self.device)
        keyframe = self.keyframe.is_keyframe(self.frame_index)
        if self.radix is not None:
            return self._process_radix(x, keyframe)
        if self.encoding.reset_each_frame or (keyframe and self.keyframe.refresh and self.frame_index > 0):
            self.backend.reset(1)
            if keyframe and self.keyframe.refresh:
                self.encoder_state = self.encoding.init_state(self.input_shape)
        steps, gates = self.encode(x)
        outputs, totals = [], None
        with torch.no_grad():
            for x_t in steps:
                result = self.backend.step(x_t[None], gates)
                self.last_step = result
                outputs.append(result.output[0])
                if self.count:
                    totals = self.recorder.count(result, totals)
        if self.count:
            self.trace.append(totals, keyframe)
        self.frame_index += 1
        return self.encoding.decode(torch.stack(outputs)).cpu().numpy()

    def _process_radix(self, x: Tensor, keyframe: bool) -> np.ndarray:
        """A quantized graph under radix encoding runs on the integer reference, layer by layer
        (``engine._radix``); the output integers are scaled back to the float graph's units."""
        result = self.radix.run(self.radix.quantize(x)[None])
        self.last_step = StepResult(result.output, result.values, result.values)
        if self.count:
            counts = radix_frame_counts(self.radix, self.recorder.counters, self.recorder.sources, result)
            self.trace.append(counts, keyframe)
        self.frame_index += 1
        return (result.output[0] * output_scale(self.graph)).cpu().numpy()

    def __call__(self, frames: Iterable) -> Iterator[np.ndarray]:
        if self.pipeline and can_pipeline(self):
            yield from pipelined(self, frames)
            return
        for frame in frames:
            yield self.process(frame)

    @property
    def state(self) -> dict[str, object]:
        """The backend's per-node state (e.g. ``state[name].reconstruction`` for sigma-delta nodes)."""
        return self.backend.state


def simulate(graph: ir.Graph, x: np.ndarray | Tensor, trace: bool = False
             ) -> np.ndarray | tuple[np.ndarray, Trace]:
    """Run a time-stepped network: ``x`` (T, *input_shape) -> (T, *output_shape).

    State starts at zero and is stepped once per t (neuron parameters discretised with ``graph.dt``).
    With ``trace=True`` also returns a Trace with one entry per time step.
    """
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x, dtype=torch.float32)
    if x.dim() != len(graph.input_shape) + 1 or tuple(x.shape[1:]) != graph.input_shape:
        raise FrameShapeError(f"simulate expects x of shape (T, *{graph.input_shape}), got {tuple(x.shape)}")
    executor = GraphExecutor(graph)
    executor.reset(1)
    recorder = TraceRecorder(graph, metadata={"encoding": "time-stepped", "steps": 1}) if trace else None
    outputs = []
    with torch.no_grad():
        for x_t in x:
            step = executor.step(x_t[None])
            outputs.append(step.output[0])
            if recorder is not None:
                recorder.trace.append(recorder.count(step, None))
    outputs = torch.stack(outputs).numpy()
    return (outputs, recorder.trace) if trace else outputs
