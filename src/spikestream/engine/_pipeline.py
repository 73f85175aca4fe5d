"""Two frames at once: a sparse stream split into two stages that run on two threads.

A video is a stream, so a network can work like a two-stage production line, as hardware pipelines
do: while the second stage computes the deep layers of frame t, the first stage already reads frame
t + 1 and computes the first layers. Each stage keeps its own nodes' state and processes the frames
in order, so every output is bit for bit what one-frame-at-a-time execution gives (the second stage
keeps copies of the first stage's nodes it reads, updated from the rows they changed:
``SparseBackend.split``).
Throughput comes near the slower stage's time per frame; latency stays that of both stages.

Where to cut is measured, in two steps. First ``PROFILE_FRAMES`` frames run one at a time with every
node, the frame preparation and every layer's counting timed, which estimates each possible cut's
two stage times (``stage_estimates``). Two threads do not run as fast as those estimates say (they
share the GIL and the memory bus, and the first stage also reads the frames), so the next frames
then run pipelined, ``TRIAL_FRAMES`` at each of the cuts around the best-balanced estimate (in
short windows, the cuts taking turns, each keeping its fastest window), and the fastest cut is kept
(``Stream.pipeline_plan`` holds its estimate and every trial).

The worker thread runs the first stage and reads the frames; the caller's thread runs the second
stage and receives the outputs in order. Numba kernels and torch operators release the GIL, which
is why two Python threads can keep two cores busy.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from spikestream.engine._counting import LayerCount
from spikestream.engine._executor import StepResult
from spikestream.engine._frames import as_frame
from spikestream.engine._sparse import Handed, SparseBackend

PROFILE_FRAMES = 8  # frames run one at a time, timed, to estimate each cut's stage times
TRIAL_FRAMES = 24  # then frames run pipelined per candidate cut, timed, to choose among them ...
TRIAL_ROUNDS = 2  # ... in this many windows, the candidates taking turns
TRIED_LATER = 2  # candidates: the best-balanced estimate, the cut before it and this many after it
PLANNING_FRAMES = 1 + PROFILE_FRAMES + (TRIED_LATER + 2) * TRIAL_FRAMES  # at most, from a reset
_QUEUE_FRAMES = 2  # frames the first stage may run ahead of the second
_END = object()  # the first stage has read every frame


@dataclass
class PipelinePlan:
    """The chosen cut and the measured times behind it (ms per frame)."""

    after: str  # the last node of the first stage
    stage_ms: tuple[float, float]  # each stage's time per frame at this cut, from the frames run one at a time
    serial_ms: float  # both stages one after the other (one frame at a time)
    trials: dict[str, float] = field(default_factory=dict)  # pipelined ms per frame of each cut tried

    def as_dict(self) -> dict:
        return {"after": self.after, "stage_ms": list(self.stage_ms), "serial_ms": self.serial_ms,
                "trials_ms": dict(self.trials)}


@dataclass
class _InFlight:
    """A frame between the stages."""

    index: int
    keyframe: bool
    handoff: dict[str, Handed]
    counts: dict[int, LayerCount]  # counts of the layers fed by the first stage, by layer index
    first: StepResult | None = None  # the first stage's values and wires, when one thread runs both


def can_pipeline(stream) -> bool:
    """Whether ``stream`` can run as a two-stage pipeline: a sparse backend with a place to cut, one
    step per frame and no state reset between frames, and no mask that depends on the outputs."""
    return (isinstance(stream.backend, SparseBackend) and stream.radix is None and stream.encoding.steps == 1
            and not stream.encoding.reset_each_frame and not stream.keyframe.refresh
            and not callable(stream.mask) and bool(stream.backend.split_points()))


class _Halves:
    """One frame's work, cut in two: ``first`` (frame preparation, stage 0 and the counting of the
    layers it feeds) and ``second`` (stage 1, the other counts, the Trace and the output)."""

    def __init__(self, stream, timings: dict[str, float] | None = None):
        self.stream = stream
        self.backend: SparseBackend = stream.backend
        first_nodes = set(self.backend.stages[0])
        sources = stream.recorder.sources
        self.first_layers = [i for i, source in enumerate(sources) if source in first_nodes]
        self.second_layers = [i for i in range(len(sources)) if i not in self.first_layers]
        self.timings = timings  # when given: seconds of "prepare", "finish" and f"count:{layer index}"

    @torch.no_grad()
    def first(self, frame, index: int) -> _InFlight:
        stream = self.stream
        start = time.perf_counter()
        steps, gates = stream.encode(as_frame(frame, stream.input_shape).to(stream.device))
        self._time("prepare", start)
        result = self.backend.run_stage(0, steps[0][None], gates)
        counts = self._count(result.wires, self.first_layers)
        single = len(self.backend.stages) == 1
        first = StepResult(result.values[self.backend.output_name], result.values, result.wires) if single else None
        return _InFlight(index, stream.keyframe.is_keyframe(index), result.handoff, counts, first)

    def run(self, frame) -> np.ndarray:
        """Both halves of the next frame, one after the other."""
        return self.second(self.first(frame, self.stream.frame_index))

    @torch.no_grad()
    def second(self, frame: _InFlight) -> np.ndarray:
        stream = self.stream
        if frame.first is None:
            result = self.backend.run_stage(1, handoff=frame.handoff)
            step = StepResult(result.values[self.backend.output_name], result.values, result.wires)
        else:
            step = frame.first
        counts = frame.counts | self._count(step.wires, self.second_layers)
        start = time.perf_counter()
        if stream.count:
            stream.trace.append([counts[i] for i in range(len(counts))], frame.keyframe)
        stream.last_step = step  # the second stage's nodes only, once split
        stream.frame_index = frame.index + 1
        output = stream.encoding.decode(step.output).cpu().numpy().copy()  # batch of one = one step
        self._time("finish", start)
        return output

    def _count(self, wires, layers: list[int]) -> dict[int, LayerCount]:
        if not self.stream.count:
            return {}
        counts = {}
        for i in layers:
            start = time.perf_counter()
            counts[i] = self.stream.recorder.count_layer(i, wires)
            self._time(f"count:{i}", start)
        return counts

    def _time(self, key: str, start: float) -> None:
        if self.timings is not None:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start


def stage_estimates(backend: SparseBackend, node_seconds: dict[str, float], timings: dict[str, float],
                    layer_sources: list[str], frames: int) -> dict[str, PipelinePlan]:
    """For every split point, the two stages' times per frame from the frames run one at a time.
    Stage 0 pays the frame preparation and the counting of the layers fed by its nodes; stage 1
    the rest of the counting and the output."""
    order = list(backend.runs)
    counted = {name: 0.0 for name in order}
    for i, source in enumerate(layer_sources):
        counted[source] += timings.get(f"count:{i}", 0.0)
    per_node = [node_seconds.get(name, 0.0) + counted[name] for name in order]
    total = timings.get("prepare", 0.0) + sum(per_node) + timings.get("finish", 0.0)
    estimates = {}
    for point in backend.split_points():
        first = timings.get("prepare", 0.0) + sum(per_node[:order.index(point) + 1])
        estimates[point] = PipelinePlan(point, (1000 * first / frames, 1000 * (total - first) / frames),
                                        1000 * total / frames)
    return estimates


def balanced_cut(backend: SparseBackend, node_seconds: dict[str, float], timings: dict[str, float],
                 layer_sources: list[str], frames: int) -> PipelinePlan:
    """The split point whose two stages' estimated times are closest to equal (the smaller of the two
    maxima; see ``stage_estimates``)."""
    estimates = stage_estimates(backend, node_seconds, timings, layer_sources, frames)
    return min(estimates.values(), key=lambda plan: max(plan.stage_ms))


def pipelined(stream, frames: Iterable) -> Iterator[np.ndarray]:
    """Stream.__call__ as a two-stage pipeline (see the module docstring); outputs in frame order."""
    backend: SparseBackend = stream.backend
    iterator = iter(frames)
    if stream.pipeline_plan is None:  # profile one frame at a time, estimate, try the best cuts, keep one
        backend.split(None)
        if stream.frame_index == 0:  # the first frame after a reset runs densely: not what the stages will see
            for frame in iterator:
                yield _Halves(stream).run(frame)
                break
        timings: dict[str, float] = {}
        halves = _Halves(stream, timings)
        previous_timer = backend.node_seconds
        node_seconds = backend.profile()
        profiled = 0
        try:
            for frame in iterator:
                yield halves.run(frame)
                profiled += 1
                if profiled == PROFILE_FRAMES:
                    break
        finally:
            backend.node_seconds = previous_timer
        if profiled < PROFILE_FRAMES:
            return
        estimates = stage_estimates(backend, node_seconds, timings, stream.recorder.sources, profiled)
        points = list(estimates)
        balanced = points.index(balanced_cut(backend, node_seconds, timings, stream.recorder.sources,
                                             profiled).after)
        trials: dict[str, float] = {}
        candidates = points[max(0, balanced - 1):balanced + 1 + TRIED_LATER]
        window = TRIAL_FRAMES // TRIAL_ROUNDS
        for point in candidates * TRIAL_ROUNDS:  # in turns, each keeping its fastest: robust to a neighbour's burst
            backend.split(point)
            start, count = time.perf_counter(), 0
            with contextlib.closing(_run_stages(stream, itertools.islice(iterator, window))) as outputs:
                for output in outputs:  # (closed at once if our consumer stops: its worker must finish)
                    yield output
                    count += 1
            if count < window:  # the frames ran out: keep what was measured in full
                break
            trials[point] = min(trials.get(point, np.inf), 1000 * (time.perf_counter() - start) / count)
        chosen = min(trials, key=trials.get) if trials else points[balanced]
        stream.pipeline_plan = replace(estimates[chosen], trials=trials)
        backend.split(chosen)
    yield from _run_stages(stream, iterator)


def _run_stages(stream, iterator: Iterator) -> Iterator[np.ndarray]:
    """The worker thread runs the first stage, this thread the second (see ``pipelined``)."""
    halves = _Halves(stream)
    handed: queue.Queue = queue.Queue(maxsize=_QUEUE_FRAMES)
    stop, abandoned = threading.Event(), threading.Event()

    def put(item) -> None:
        while not abandoned.is_set():
            try:
                handed.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def first_stage(index: int) -> None:
        try:
            for frame in iterator:
                if stop.is_set():
                    break
                put(halves.first(frame, index))
                index += 1
        except BaseException as error:  # raised in the caller's thread, in frame order
            put(error)
            return
        put(_END)

    worker = threading.Thread(target=first_stage, args=(stream.frame_index,), name="spikestream-stage-0",
                              daemon=True)
    worker.start()
    item = None
    try:
        while (item := handed.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield halves.second(item)
    finally:
        stop.set()
        try:  # frames the first stage has done: finish them, so that both stages end on the same frame
            while item is not _END and not isinstance(item, BaseException):
                item = handed.get()
                if isinstance(item, _InFlight):
                    halves.second(item)
        finally:
            abandoned.set()
            worker.join()
