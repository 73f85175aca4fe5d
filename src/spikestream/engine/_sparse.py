"""The sparse backend: a sigma-delta network computes only from the pixels whose inputs changed.

Every spatial node keeps its current value as a dense channels-last tensor ``(1, C, H, W)``, so that
``rows = (H·W, C)`` is a view whose rows are pixels. Each step a node learns which of its input
pixels changed (its sources' *dirty* positions) and updates only those rows, with one numba kernel
call per node (``_sparse_kernels``):

- a SigmaDelta node compares its input with its reconstruction at the dirty pixels and emits the
  rows that crossed θ as a ``SparseWire`` (positions, values). Fed by a nearest upsampling, it
  works once per source pixel and emits one row per block of identical pixels; fed by the (dense)
  input, it scans whole planes;
- a convolution fed by such a wire is linear, so it accumulates W·y: each event row is multiplied
  into the weight taps and added to the output pixels it reaches (per-pixel scatter, zero values
  skipped); its dirty set is the pixels it touched;
- ReLU, pooling, nearest upsampling, Add and Concat recompute their output at the dirty pixels and
  pass on only the pixels whose value changed (a ReLU that stays at zero stops the wave there).

A convolution falls back to the dense computation (``conv(â) + b`` over the whole map, what the
dense backend does) when its events are more work than a crossover measured per layer by
``calibrate`` — dense BLAS beats scatter at high activity — and every node computes densely on the
first step after a reset, when everything changes. A dense node marks its whole map dirty, so its
successors recompute densely too. Kinds without a sparse rule (spiking neurons, Linear, Flatten,
bilinear upsampling, ...) always run densely, or not at all when nothing they read changed.

The node order can be cut into two *stages* (``split``) that two threads run on consecutive frames
(``engine._pipeline``). A node keeps its per-step flags (``fresh``, its stamps' ``epoch``) itself, so
the stages share no step state; the second stage reads the first stage's nodes through *mirrors*,
copies it updates from the rows those nodes changed (``Handed``), which keeps the two bit for bit
equal to running the whole order at once.

The sparse backend accumulates W·y where the dense backend evaluates W·â + b; both are exact in
real arithmetic and agree to float rounding. A value within rounding of θ can then send on one
backend and not on the other; that difference stays below θ at that neuron (tests and benchmarks
report the output difference).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from spikestream import ir, neurons
from spikestream.engine import _sparse_kernels as kernels
from spikestream.engine._executor import StepResult, check_executable
from spikestream.engine._ops import DENSE_OPS, node_tensors
from spikestream.engine._stateful import STATEFUL
from spikestream.errors import InputError

DEFAULT_CROSSOVER = 0.25  # share of full-activity work above which a convolution runs densely, before calibration
# Share of changed input pixels above which a bilinear upsampling recomputes its whole map: a sparse
# output pixel costs about three dense ones (seg-motion's output layer), and each input reaches ~2.5.
BILINEAR_CROSSOVER = 0.1
_POOL_MODES = {"MaxPool2d": 0, "AvgPool2d": 1, "SumPool2d": 2}  # pool_rows' mode argument


class SparseWire:
    """Events of one step as rows: ``values[i]`` (C,) is what pixel ``positions[i]`` sends. With a
    ``block`` (b_y, b_x), positions index the grid coarsened by it, and every pixel of the block
    sends ``values[i]`` (the events of a nearest-upsampled map).

    The rows are kept as the numpy arrays the kernels wrote (``position_rows``, ``value_rows``), which
    the next kernels read as they are; ``positions`` and ``values`` are torch views of them."""

    __slots__ = ("block", "position_rows", "shape", "value_rows")

    def __init__(self, positions: Tensor | np.ndarray, values: Tensor | np.ndarray, shape: tuple[int, ...],
                 block: tuple[int, int] = (1, 1)):
        self.position_rows = positions.numpy() if isinstance(positions, Tensor) else positions  # (n,) int64
        self.value_rows = values.numpy() if isinstance(values, Tensor) else values  # (n, C)
        self.shape = shape  # per-sample (C, H, W)
        self.block = block

    @property
    def positions(self) -> Tensor:
        """(n,) int64 flat positions in the (H / b_y)·(W / b_x) grid."""
        return torch.from_numpy(self.position_rows)

    @property
    def values(self) -> Tensor:
        """(n, C)."""
        return torch.from_numpy(self.value_rows)

    def __repr__(self) -> str:
        return f"SparseWire({len(self.position_rows)} rows, shape={self.shape}, block={self.block})"

    def dense(self) -> Tensor:
        """(1, C, H, W) tensor with the events scattered into zeros."""
        channels, height, width = self.shape
        block_y, block_x = self.block
        coarse = torch.zeros((1, channels, height // block_y, width // block_x), dtype=self.values.dtype)
        coarse = coarse.contiguous(memory_format=torch.channels_last)
        flat_view(coarse).index_copy_(0, self.positions, self.values)
        if self.block == (1, 1):
            return coarse
        return coarse.repeat_interleave(block_y, 2).repeat_interleave(block_x, 3)


def flat_view(value: Tensor) -> Tensor:
    """(1, C, H, W) channels-last -> (H·W, C) *view* whose rows are pixels (writes go through)."""
    return value.permute(0, 2, 3, 1).view(-1, value.shape[1])


def rows(value: Tensor) -> np.ndarray:
    """(1, C, H, W) -> (H·W, C) numpy view for the kernels: contiguous for channels-last memory,
    strided otherwise (the kernels only read such maps)."""
    return value[0].flatten(1).T.numpy()


def channels_last(value: Tensor) -> Tensor:
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value.contiguous()


class _NodeRun:
    """Per-node execution state of the sparse backend."""

    def __init__(self, node: ir.Node, shape: tuple[int, ...], sources: list[_NodeRun]):
        self.node = node
        self.name = node.name
        self.shape = shape
        self.graph_sources = sources
        self.sources = list(sources)  # what the rules read: a mirror replaces a source in an earlier stage
        self.spatial = len(shape) == 3
        self.pixels = shape[1] * shape[2] if self.spatial else 0
        self._value: Tensor | None = None
        self._rows: np.ndarray | None = None  # (H·W, C) view of the value, for the kernels (made when first read)
        self._planes: np.ndarray | None = None  # (C, H·W) view of a planar value (made when first read)
        self.dirty: np.ndarray | None = None  # positions whose value changed this step; None: any may have
        self.wire: Tensor | SparseWire | None = None
        self.nonzero = 0  # non-zero values on a sigma-delta node's wire this step
        self.crossover = DEFAULT_CROSSOVER
        self.fresh = True  # no step since the last reset: compute densely, everything changed
        self.epoch = 0  # steps of this node, for its stamps; never reset, so old marks never match
        if self.spatial:
            self.dirty_buffer = np.empty(self.pixels, np.int64)  # the kernels write dirty positions here
            self.stamp = np.zeros(self.pixels, np.int64)  # deduplication marks (see _sparse_kernels)
            self.all_positions = np.arange(self.pixels, dtype=np.int64)

    @property
    def value(self) -> Tensor:
        """(1, *shape); channels-last when spatial, except the input and a sigma-delta node fed by it."""
        return self._value

    @value.setter
    def value(self, value: Tensor) -> None:
        self._value = value
        self._rows = self._planes = None

    @property
    def rows(self) -> np.ndarray | None:
        """(H·W, C) numpy view of the value (None for a vector); made once per value tensor, on first
        use: the input's and the output's are never read, and making one costs a few torch calls."""
        if self._rows is None and self.spatial:
            self._rows = rows(self._value)
        return self._rows

    @property
    def planes(self) -> np.ndarray:
        """(C, H·W) numpy view of a planar (not channels-last) spatial value."""
        if self._planes is None:
            self._planes = self._value[0].flatten(1).numpy()
        return self._planes

    def changed(self) -> np.ndarray:
        """Positions to recompute from: the dirty set, or every pixel."""
        return self.all_positions if self.dirty is None else self.dirty


@dataclass
class Handed:
    """What one node changed in a step, copied for a later stage's mirror of it: its value at the
    positions that may have changed, and a sigma-delta node's events."""

    positions: np.ndarray | None  # (n,) int64; None: the whole value changed
    rows: np.ndarray | Tensor  # (n, C) the new rows, or a copy of the whole value when positions is None
    events: np.ndarray | None = None  # (n, C) a sigma-delta node's event values at ``positions``
    nonzero: int = 0

    @classmethod
    def of(cls, run: _NodeRun) -> Handed:
        events = run.wire.value_rows.copy() if isinstance(run.wire, SparseWire) else None
        if run.dirty is None:
            return cls(None, run.value.clone(), events, run.nonzero)
        positions = run.dirty.copy()
        return cls(positions, run.rows[positions], events, run.nonzero)

    def apply(self, mirror: _NodeRun) -> None:
        if self.positions is None:
            mirror.value.copy_(self.rows)
        else:
            mirror.rows[self.positions] = self.rows
        mirror.dirty, mirror.nonzero = self.positions, self.nonzero
        mirror.wire = mirror.value if self.events is None else SparseWire(self.positions, self.events, mirror.shape)


def _copy_whole(run: _NodeRun, mirror: _NodeRun) -> None:
    """Start ``mirror`` as a copy of ``run``'s current value (same memory layout), all of it changed."""
    mirror.value = run.value.clone()
    mirror.dirty, mirror.wire = None, mirror.value


class StageResult(NamedTuple):
    values: dict[str, Tensor]  # as in StepResult, for this stage's nodes (and its mirrors)
    wires: dict[str, Tensor | SparseWire]
    handoff: dict[str, Handed]  # for the next stage: the changes of the nodes it mirrors


@dataclass
class _SigmaDeltaPlan:
    """How a spatial SigmaDelta node runs, and its buffers."""

    layout: str  # "rows" (dirty pixels), "planes" (every pixel of the planar input) or "blocks" (see SparseWire)
    block: tuple[int, int]
    threshold: np.ndarray  # θ as rows (1 or H·W, C), or as planes (C, 1 or H·W) for "planes"
    event_positions: np.ndarray  # (P,) int64, the first n are this step's
    event_values: np.ndarray  # (P, C) float32
    sends: np.ndarray | None = None  # (P rounded up to 8,) bool scratch for "planes", read as uint64 words


@dataclass
class _ConvolutionPlan:
    """The tables conv_scatter reads, and the calibrated cost of its events."""

    weight: np.ndarray  # (C_in, k_h·k_w·C_out)
    row_targets: np.ndarray  # (H_in, k_h) output row reached from input row y through kernel row k, or −1
    column_targets: np.ndarray  # (W_in, k_w)
    row_cost: float  # cost of one event row in units of one non-zero value (calibrated)
    pointwise: bool  # 1x1, stride 1, unpadded, on pixel events: each event reaches its own pixel only
    input_rows: int  # event rows at full activity (input pixels, or blocks)

    @property
    def full_work(self) -> float:
        """Work units of every input row sending every value."""
        return self.input_rows * (self.row_cost + self.weight.shape[0])

    def work(self, wire_rows: int, nonzero: int) -> float:
        """This step's events as a share of full-activity work."""
        return (wire_rows * self.row_cost + nonzero) / self.full_work


class SparseBackend:
    """Event-driven execution of sigma-delta graphs (batch of one), same interface as GraphExecutor."""

    def __init__(self, graph: ir.Graph, device: torch.device | str = "cpu"):
        check_executable(graph)
        if torch.device(device).type != "cpu":
            raise InputError("the sparse backend runs on the CPU; use backend='dense' on other devices")
        self.graph = graph
        self.device = torch.device(device)
        (self.input_name,) = graph.input_names
        (self.output_name,) = graph.output_names
        self.runs: dict[str, _NodeRun] = {}
        for name in graph.order:
            self.runs[name] = _NodeRun(graph.nodes[name], graph.shapes[name],
                                       [self.runs[s] for s in graph.predecessors(name)])
        self.params = {}
        for node in graph:
            if node.kind in STATEFUL:
                self.params[node.name] = STATEFUL[node.kind].make_params(node, graph.shapes[node.name], graph.dt,
                                                                         self.device)
            else:
                self.params[node.name] = node_tensors(node, self.device)
        self._rules = {name: self._rule(run) for name, run in self.runs.items()}
        self._sigma_deltas = {name: self._sigma_delta_plan(run) for name, run in self.runs.items()
                              if self._rules[name] == SparseBackend._sigma_delta}
        self._convolutions = {name: _convolution_plan(run, self._sigma_deltas[run.sources[0].name].block)
                              for name, run in self.runs.items() if self._rules[name] == SparseBackend._convolution}
        self._chains = self._elementwise_chains()
        self._bilinear = {name: _bilinear_tables(run) for name, run in self.runs.items()
                          if run.node.kind == "Upsample" and run.node.mode == "bilinear"}
        self._bilinear_across = {name: np.empty((run.sources[0].shape[1] * run.shape[2], run.shape[0]), np.float32)
                                 for name, run in self.runs.items() if name in self._bilinear}
        self._step_rules = dict(self._rules)
        for name, run in self.runs.items():
            consumers = self.graph.successors(name)
            if run.node.kind == "Upsample" and consumers and all(
                    consumer in self._sigma_deltas and self._sigma_deltas[consumer].layout == "blocks"
                    for consumer in consumers):
                self._step_rules[name] = _upsample_read_as_blocks
        for first, chain in self._chains.items():
            self._step_rules[first] = _chain
            for member in chain[1:]:
                self._step_rules[member.name] = _done_by_chain
        self.state: dict[str, object] = {}
        self.batch = 0
        self._input_value: Tensor | None = None
        self._gates: dict[str, Tensor] = {}
        self.node_seconds: dict[str, float] | None = None  # per-node wall time, once profile() is called
        self.calibration: dict[str, dict[str, float]] = {}  # per layer: crossover and row_cost (see calibrate)
        self._stages = [list(self.runs.values())]  # see split
        self._mirrors: dict[str, _NodeRun] = {}  # by the name of the node they copy, in an earlier stage

    def profile(self) -> dict[str, float]:
        """Start timing every node's step (wall clock, summed over steps); returns the dict it fills.
        Work done for a node by a fused chain is timed on the chain's first node."""
        self.node_seconds = dict.fromkeys(self.runs, 0.0)
        return self.node_seconds

    # --- preparation ----------------------------------------------------------------------------
    def _rule(self, run: _NodeRun):
        """How this node computes each step."""
        kind = run.node.kind
        if kind == "Input":
            return SparseBackend._input
        if kind == "Output":
            return _output
        if kind == "SigmaDelta" and run.spatial:
            return SparseBackend._sigma_delta
        if kind in ("Conv2d", "ConvTranspose2d") and run.node.groups == 1 \
                and run.sources[0].node.kind == "SigmaDelta":
            return SparseBackend._convolution
        if run.spatial and kind in _SPARSE_RULES:
            return _SPARSE_RULES[kind]
        return SparseBackend._dense

    def _sigma_delta_plan(self, run: _NodeRun) -> _SigmaDeltaPlan:
        threshold = self.params[run.name].threshold
        channels = run.shape[0]
        per_neuron = threshold.dim() == 3 and threshold.shape[1:] != (1, 1)
        if per_neuron:
            threshold = threshold.expand(run.shape).permute(1, 2, 0).reshape(-1, channels)
        else:  # one θ per layer () or per channel (C, 1, 1)
            threshold = threshold.expand(channels, 1, 1).reshape(1, channels)
        threshold = threshold.numpy()
        source = run.sources[0].node
        consumers = [(self._rules[n], self.graph.nodes[n]) for n in self.graph.successors(run.name)]
        layout, block = "rows", (1, 1)
        if source.kind == "Input":
            layout, threshold = "planes", threshold.T
        elif source.kind == "Upsample" and source.mode == "nearest" and not per_neuron and all(
                rule == SparseBackend._convolution and consumer.kind == "Conv2d" and consumer.stride == (1, 1)
                for rule, consumer in consumers):  # they read events only, the same way at every block
            layout, block = "blocks", source.scale_factor
        return _SigmaDeltaPlan(layout, block, np.ascontiguousarray(threshold, np.float32),
                               np.empty(run.pixels, np.int64), np.empty((run.pixels, channels), np.float32),
                               np.zeros(-(-run.pixels // 8) * 8, np.bool_) if layout == "planes" else None)

    def _elementwise_chains(self) -> dict[str, list[_NodeRun]]:
        """Runs of Add → ReLU → SigmaDelta (two or three of them, in that order, each feeding only the
        next) that one kernel call computes together; keyed by their first node. Only the last node's
        value is kept up to date: the others feed nobody else, so after the first step their values in
        a StepResult are those of the last step that ran them one by one (densely)."""
        stage = {"Add": 0, "ReLU": 1, "SigmaDelta": 2}
        chained = {_SPARSE_RULES["Add"], _relu}
        chains: dict[str, list[_NodeRun]] = {}
        members = set()
        for name, run in self.runs.items():
            if name in members or self._rules[name] not in chained:
                continue
            chain = [run]
            while chain[-1].node.kind != "SigmaDelta" and len(consumers := self.graph.successors(chain[-1].name)) == 1:
                following = self.runs[consumers[0]]
                plan = self._sigma_deltas.get(following.name)
                if stage.get(following.node.kind, -1) <= stage[chain[-1].node.kind] or not (
                        self._rules[following.name] in chained or (plan is not None and plan.layout == "rows")):
                    break
                chain.append(following)
            if len(chain) > 1:
                chains[name] = chain
                members.update(member.name for member in chain)
        return chains

    # --- state -------------------------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        if batch != 1:
            raise InputError("the sparse backend streams one sample at a time (batch of 1)")
        self.batch = 1
        self.state = {}
        for name, run in self.runs.items():
            node = run.node
            value = torch.zeros((1, *run.shape), device=self.device)
            planar = name in self._sigma_deltas and self._sigma_deltas[name].layout == "planes"
            run.value = value if planar else channels_last(value)
            run.dirty, run.wire = None, run.value
            if name in self._convolutions and node.bias is not None:  # accumulators start at W·0 + b
                run.value += torch.as_tensor(np.array(node.bias)).reshape(1, -1, 1, 1)
            if node.kind in STATEFUL:
                if name in self._sigma_deltas:
                    self.state[name] = neurons.SigmaDeltaState(run.value)  # â, updated in place
                else:
                    self.state[name] = STATEFUL[node.kind].init_state((1, *run.shape), self.device)
            run.fresh = True
        for name, mirror in self._mirrors.items():
            _copy_whole(self.runs[name], mirror)

    # --- stages ----------------------------------------------------------------------------------
    @property
    def stages(self) -> list[list[str]]:
        """The node names of each stage, in order: one stage until ``split``."""
        return [[run.name for run in stage] for stage in self._stages]

    def split_points(self) -> list[str]:
        """Nodes after which the order can be cut into two stages. The second stage reads what it
        needs of the first from *mirrors*, copies of nodes that it updates from the rows they changed
        (and a sigma-delta node's events), so every value the second stage reads must be one that
        changes only at its node's dirty positions: not the input (copied whole every step), not a
        fused chain's inner nodes (not kept up to date), not a "blocks" sigma-delta node or an
        upsampling read as blocks (their values stand for other maps); the output stays in the second
        stage."""
        order = list(self.runs)
        reads = {name: {s.name for s in run.graph_sources} for name, run in self.runs.items()}
        for name, plan in self._sigma_deltas.items():
            if plan.layout == "blocks":  # reads the rows under its upsampling (see _sigma_delta)
                reads[name] |= {s.name for s in self.runs[name].graph_sources[0].graph_sources}
        chained = {member.name for chain in self._chains.values() for member in chain[:-1]}
        unmirrorable = {self.input_name, *chained} | {
            name for name in self.runs if self._step_rules[name] == _upsample_read_as_blocks
            or (name in self._sigma_deltas and self._sigma_deltas[name].layout == "blocks")}
        points = []
        for k, name in enumerate(order[:-1]):
            first = set(order[:k + 1])
            if self.output_name not in first and not any(
                    source in unmirrorable for later in order[k + 1:] for source in reads[later] & first):
                points.append(name)
        return points

    def split(self, after: str | None) -> None:
        """Run the nodes up to ``after`` (one of ``split_points``) as stage 0 and the rest as stage 1,
        which two threads can run on consecutive frames at once (``run_stage``); None joins them
        again. Allowed mid-stream: the mirrors start from the current reconstructions."""
        for run in self.runs.values():
            run.sources = list(run.graph_sources)
        self._mirrors = {}
        order = list(self.runs.values())
        if after is None:
            self._stages = [order]
            return
        if after not in self.split_points():
            raise InputError(f"cannot split the graph after {after!r}; possible points: "
                             f"{', '.join(self.split_points()) or 'none'}")
        cut = [run.name for run in order].index(after) + 1
        first = {run.name for run in order[:cut]}
        for run in order[cut:]:
            for i, source in enumerate(run.sources):
                if source.name in first:
                    if source.name not in self._mirrors:
                        self._mirrors[source.name] = _NodeRun(source.node, source.shape, [])
                        _copy_whole(source, self._mirrors[source.name])
                    run.sources[i] = self._mirrors[source.name]
        self._stages = [order[:cut], order[cut:]]

    # --- one step ----------------------------------------------------------------------------------
    def step(self, x: Tensor, gates: dict[str, Tensor] | None = None) -> StepResult:
        """One time step through every stage in turn."""
        result = self.run_stage(0, x, gates)
        values, wires = result.values, result.wires
        for stage in range(1, len(self._stages)):
            result = self.run_stage(stage, handoff=result.handoff)
            values, wires = values | result.values, wires | result.wires
        return StepResult(values[self.output_name], values, wires)

    def run_stage(self, stage: int, x: Tensor | None = None, gates: dict[str, Tensor] | None = None,
                  handoff: dict[str, Handed] | None = None) -> StageResult:
        """One time step of one stage: stage 0 reads the input ``x`` (and ``gates``), a later stage
        the ``handoff`` of the stage before, for its mirrors. Different stages may run at once on
        different threads (each touches only its own nodes), each stage's steps in frame order."""
        if stage == 0:
            if self.batch != 1:
                self.reset(1)
            self._input_value = x
            self._gates = gates or {}
        values, wires = {}, {}
        for name, handed in (handoff or {}).items():
            mirror = self._mirrors[name]
            handed.apply(mirror)
            values[name], wires[name] = mirror.value, mirror.wire
        timing = self.node_seconds
        for run in self._stages[stage]:
            run.epoch += 1
            if timing is None:
                self._step_rules[run.name](self, run)
            else:
                start = time.perf_counter()
                self._step_rules[run.name](self, run)
                timing[run.name] += time.perf_counter() - start
            run.fresh = False
            values[run.name] = run.value
            wires[run.name] = run.wire
        sent = {}
        if stage + 1 < len(self._stages):  # copies: the next step of this stage reuses the event buffers
            sent = {name: Handed.of(self.runs[name]) for name in self._mirrors}
        return StageResult(values, wires, sent)

    def _input(self, run: _NodeRun) -> None:
        run.value = self._input_value
        run.dirty, run.wire = None, run.value

    def _dense(self, run: _NodeRun) -> None:
        """Whole-map computation, exactly as the dense backend; skipped for a stateless node whose
        inputs did not change."""
        binding = STATEFUL.get(run.node.kind)
        if binding is None and not run.fresh and all(s.dirty is not None and len(s.dirty) == 0
                                                              for s in run.sources):
            run.dirty = _NOTHING
            return
        inputs = [s.value for s in run.sources]
        if binding is None:
            value = DENSE_OPS[run.node.kind](run.node, self.params[run.name], inputs)
            if any(value.data_ptr() == x.data_ptr() for x in inputs):
                value = value.clone()  # sparse rules write values in place; never into an input's
            run.value = run.wire = channels_last(value)
        else:  # a spiking neuron, or a sigma-delta node on vectors, whose wire carries its events
            value, run.wire, self.state[run.name] = binding.step(inputs[0], self.state[run.name],
                                                                 self.params[run.name], self._gates.get(run.name))
            run.value = channels_last(value)
        run.dirty = None

    def _sigma_delta(self, run: _NodeRun) -> None:
        (source,) = run.sources
        plan = self._sigma_deltas[run.name]
        gate = self._gates.get(run.name)
        if gate is None:
            gate = _NO_GATE
        elif plan.layout == "planes" and gate.numel() == run.pixels:
            gate = gate.to(torch.float32).reshape(-1).contiguous().numpy()
        else:
            raise InputError(f"the sparse backend gates sigma-delta nodes fed by the input, per pixel; got a gate "
                             f"of shape {tuple(gate.shape)} for {run.name!r}")
        if plan.layout == "planes":
            count, run.nonzero = kernels.sigma_delta_planes(
                source.planes, run.planes, plan.threshold, gate, plan.sends,
                plan.event_positions, plan.event_values)
        elif plan.layout == "blocks":
            (upsampled,) = source.sources
            count, run.nonzero = kernels.sigma_delta_blocks(
                upsampled.rows, upsampled.changed(), upsampled.shape[2], *plan.block, run.rows, plan.threshold,
                plan.event_positions, plan.event_values)
        else:
            count, run.nonzero = kernels.sigma_delta_rows(source.rows, source.changed(), run.rows, plan.threshold,
                                                          gate, plan.event_positions, plan.event_values)
        # a "blocks" node's dirty set holds coarse positions; only convolutions read such a node, from its wire
        run.dirty = plan.event_positions[:count]
        run.wire = SparseWire(run.dirty, plan.event_values[:count], run.shape,
                              plan.block)

    def _convolution(self, run: _NodeRun) -> None:
        """Accumulate W·y for a convolution fed by sigma-delta events, or recompute densely."""
        (source,) = run.sources
        node = run.node
        plan = self._convolutions[run.name]
        wire = source.wire
        if run.fresh or plan.work(len(wire.position_rows), source.nonzero) > run.crossover:
            run.value = channels_last(DENSE_OPS[node.kind](node, self.params[run.name], [source.value]))
            run.dirty, run.wire = None, run.value
            return
        positions = wire.position_rows
        if plan.pointwise:
            kernels.pointwise_scatter(positions, wire.value_rows, plan.weight, run.rows)
            run.dirty, run.wire = positions, run.value
            return
        count = kernels.conv_scatter(positions, wire.value_rows, source.shape[2] // wire.block[1],
                                     plan.weight, plan.row_targets, plan.column_targets, run.rows, run.shape[2],
                                     run.stamp, run.epoch, run.dirty_buffer)
        run.dirty, run.wire = run.dirty_buffer[:count], run.value

    # --- calibration ---------------------------------------------------------------------------------
    def use_calibration(self, calibration: dict[str, dict[str, float]]) -> dict[str, float]:
        """Take what ``calibrate`` measured before (its ``calibration``, e.g. another stream's), so that
        both make the same dense-or-sparse decisions; returns {layer: crossover}."""
        unknown = sorted(set(calibration) - set(self._convolutions))
        if unknown:
            raise InputError(f"no convolution fed by events is called {', '.join(unknown)}; "
                             f"a calibration is for: {', '.join(self._convolutions)}")
        for name, measured in calibration.items():
            self._convolutions[name].row_cost = float(measured["row_cost"])
            self.runs[name].crossover = float(measured["crossover"])
        self.calibration = {name: dict(measured) for name, measured in calibration.items()}
        return {name: measured["crossover"] for name, measured in calibration.items()}

    def calibrate(self, fractions=(0.01, 0.05, 0.2), repeats: int = 5) -> dict[str, float]:
        """Measure, per convolution fed by events, when the dense path becomes faster. Call it before
        streaming: it clears the state.

        Times the scatter on random event rows at a few activity levels, with every value non-zero
        and with one non-zero value per row (the fastest of ``repeats`` runs, robust to a busy
        machine, each after flushing the core's cache as streaming does), fits time = a + b·rows +
        c·values, and sets the crossover at the share of full-activity work where that meets the
        dense convolution's time. Returns {layer: crossover}; ``calibration`` keeps both measured
        numbers of each layer (``use_calibration`` gives them to another backend).
        """
        generator = np.random.default_rng(0)
        crossovers = {}
        self.reset(1)
        for name, plan in self._convolutions.items():
            run = self.runs[name]
            source = run.sources[0]
            block_y, block_x = self._sigma_deltas[source.name].block
            coarse_pixels, channels = source.pixels // (block_y * block_x), source.shape[0]
            samples = []  # (rows, values, seconds)
            for fraction in fractions:
                count = max(1, int(fraction * coarse_pixels))
                for per_row in {channels, 1}:
                    samples.append((count, count * per_row, self._time_convolution(
                        run, count, per_row, 1.0, repeats, generator)))
            dense_time = self._time_convolution(run, coarse_pixels, channels, 0.0, repeats, generator)
            design = np.array([(1.0, r, v) for r, v, _ in samples])
            (intercept, row_time, value_time), *_ = np.linalg.lstsq(design, np.array([t for *_, t in samples]))
            if value_time > 0 and row_time > 0:
                plan.row_cost = row_time / value_time
                crossover = (dense_time - intercept) / value_time / plan.full_work
            else:  # timings too noisy to fit: keep the default
                crossover = DEFAULT_CROSSOVER
            run.crossover = crossovers[name] = float(np.clip(crossover, 0.0, 1.0))
            self.calibration[name] = {"crossover": run.crossover, "row_cost": plan.row_cost}
        self.reset(1)  # calibration wrote into the accumulators
        return crossovers

    def _time_convolution(self, run: _NodeRun, count: int, per_row: int, crossover: float, repeats: int,
                          generator: np.random.Generator) -> float:
        """Fastest of ``repeats`` steps of a convolution fed ``count`` random event rows with
        ``per_row`` non-zero values each."""
        source = run.sources[0]
        plan = self._sigma_deltas[source.name]
        coarse_pixels, channels = source.pixels // (plan.block[0] * plan.block[1]), source.shape[0]
        positions = plan.event_positions[:count]
        values = plan.event_values[:count]
        positions[:] = np.sort(generator.permutation(coarse_pixels)[:count])
        values[:] = 0
        for row, columns in enumerate(generator.random((count, channels)).argsort(1)[:, :per_row]):
            values[row, columns] = generator.standard_normal(per_row, dtype=np.float32)
        source.nonzero = count * per_row
        source.wire = SparseWire(positions, values, source.shape, plan.block)
        run.crossover = crossover
        run.fresh = False
        times = []
        for _ in range(repeats + 1):  # the first run compiles or loads the kernel
            run.epoch += 1
            _CACHE_FLUSH[:] += 1  # while streaming, a layer's data has left the core's cache since its last step
            start = time.perf_counter()
            self._convolution(run)
            times.append(time.perf_counter() - start)
        return min(times[1:])


_CACHE_FLUSH = np.zeros(2 * 2**20, np.float32)  # 8 MB, several times a core's L2
_NO_GATE = np.empty(0, np.float32)
_NO_ROWS = np.empty((0, 0), np.float32)  # an absent stage of elementwise_rows
_NOTHING = np.empty(0, np.int64)  # the dirty set of a node that did not change


def _convolution_plan(run: _NodeRun, block: tuple[int, int]) -> _ConvolutionPlan:
    """Weight and target tables of a convolution fed by event rows that each stand for a ``block`` of
    input pixels. For blocks (stride 1 only), the taps of all pixels of a block that reach the same
    output are summed once here, so each event row is scattered to fewer, combined taps."""
    node = run.node
    in_channels, in_height, in_width = run.sources[0].shape
    _, out_height, out_width = run.shape
    weight = np.asarray(node.weight, np.float32)
    weight = weight.transpose((1, 2, 3, 0) if node.kind == "Conv2d" else (0, 2, 3, 1))  # (C_in, k_h, k_w, C_out)
    if block == (1, 1):
        tables = [_target_table(size, out_size, kernel, stride, padding, dilation, node.kind == "ConvTranspose2d")
                  for size, out_size, kernel, stride, padding, dilation in zip(
                      (in_height, in_width), (out_height, out_width), node.kernel_size, node.stride, node.padding,
                      node.dilation, strict=True)]
    else:
        # input i = b·j + d of block j reaches output i + p − dilation·k: offset d + p − dilation·k from b·j
        axes = []
        for b, size, out_size, kernel, padding, dilation in zip(block, (in_height, in_width), (out_height, out_width),
                                                                node.kernel_size, node.padding, node.dilation,
                                                                strict=True):
            offsets = np.arange(b)[:, None] + padding - dilation * np.arange(kernel)[None, :]  # (b, k)
            combined, tap_of = np.unique(offsets, return_inverse=True)
            outputs = b * np.arange(size // b)[:, None] + combined[None, :]
            axes.append((np.where((outputs >= 0) & (outputs < out_size), outputs, -1).astype(np.int64),
                         tap_of.reshape(offsets.shape), len(combined)))
        (row_table, row_tap, row_taps), (column_table, column_tap, column_taps) = axes
        summed = np.zeros((in_channels, row_taps, column_taps, weight.shape[3]), np.float32)
        for dy, ky, dx, kx in np.ndindex(block[0], node.kernel_size[0], block[1], node.kernel_size[1]):
            summed[:, row_tap[dy, ky], column_tap[dx, kx]] += weight[:, ky, kx]
        weight, tables = summed, [row_table, column_table]
    row_cost = float(tables[0].shape[1] * tables[1].shape[1])  # one output row per tap, until calibrated
    coarse_pixels = in_height // block[0] * (in_width // block[1])
    pointwise = (node.kind == "Conv2d" and node.kernel_size == (1, 1) and node.stride == (1, 1)
                 and node.padding == (0, 0) and block == (1, 1))
    return _ConvolutionPlan(np.ascontiguousarray(weight.reshape(in_channels, -1)), *tables, row_cost, pointwise,
                            coarse_pixels)


def _target_table(size: int, out_size: int, kernel: int, stride: int, padding: int, dilation: int,
                  transposed: bool) -> np.ndarray:
    """(size, kernel) int64: the output index that input index i reaches through kernel index k, or −1.
    A convolution's output o reads input o·s − p + d·k; a transposed one sends input i to i·s − p + d·k."""
    i = np.arange(size)[:, None]
    k = np.arange(kernel)[None, :]
    if transposed:
        out = i * stride - padding + dilation * k
        valid = np.ones_like(out, bool)
    else:
        shifted = i + padding - dilation * k
        out, valid = shifted // stride, shifted % stride == 0
    valid &= (out >= 0) & (out < out_size)
    return np.where(valid, out, -1).astype(np.int64)


# --- sparse recomputation rules for stateless spatial nodes --------------------------------------------


def _rowwise(run: _NodeRun) -> bool:
    """Whether a rule can work on dirty rows this step (else it computes the whole map)."""
    return all(s.dirty is not None for s in run.sources)


def _relu(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = run.sources
    if run.fresh or not _rowwise(run):
        return backend._dense(run)
    count = kernels.relu_rows(source.rows, source.dirty, run.rows, run.dirty_buffer)
    run.dirty, run.wire = run.dirty_buffer[:count], run.value


def _pool(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = run.sources
    node = run.node
    if run.fresh or not _rowwise(run) or node.kernel_size != node.stride or node.padding != (0, 0):
        return backend._dense(run)
    _, out_height, out_width = run.shape
    count = kernels.pool_rows(source.rows, source.dirty, source.shape[2], *node.kernel_size,
                              _POOL_MODES[node.kind], run.rows, out_height, out_width, run.stamp,
                              run.epoch, run.dirty_buffer)
    run.dirty, run.wire = run.dirty_buffer[:count], run.value


def _upsample(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = run.sources
    if run.node.mode == "bilinear":
        return _bilinear(backend, run)
    if run.fresh or not _rowwise(run):
        return backend._dense(run)
    count = kernels.upsample_nearest_rows(source.rows, source.dirty, source.shape[2], *run.node.scale_factor,
                                          run.rows, run.dirty_buffer)
    run.dirty, run.wire = run.dirty_buffer[:count], run.value


def _upsample_read_as_blocks(backend: SparseBackend, run: _NodeRun) -> None:
    """A nearest upsampling whose every consumer is a "blocks" sigma-delta node: those compare its
    *source* pixels once per block, so after the first step (when they run densely from this map)
    nothing reads it and it is not recomputed: its value in a StepResult is then that of the first
    step after the last reset."""
    if run.fresh:
        return backend._dense(run)
    run.dirty = None


def _bilinear(backend: SparseBackend, run: _NodeRun) -> None:
    """Bilinear upsampling, recomputed in place: around the changed input pixels, or everywhere when
    they are many (a fresh map per step would cost more than the arithmetic)."""
    (source,) = run.sources
    row_taps, row_weights, column_taps, column_weights, row_reach, column_reach = backend._bilinear[run.name]
    if run.fresh or not _rowwise(run) or len(source.dirty) > BILINEAR_CROSSOVER * source.pixels:
        kernels.bilinear_all(source.rows, source.shape[2], row_taps, row_weights, column_taps, column_weights,
                             backend._bilinear_across[run.name], run.rows)
        run.dirty = None
    else:
        count = kernels.bilinear_rows(source.rows, source.dirty, source.shape[2], row_taps, row_weights, column_taps,
                                      column_weights, row_reach, column_reach, run.rows, run.shape[2], run.stamp,
                                      run.epoch, run.dirty_buffer)
        run.dirty = run.dirty_buffer[:count]
    run.wire = run.value


def _bilinear_tables(run: _NodeRun) -> tuple[np.ndarray, ...]:
    """bilinear_rows' tables: row taps and weights, column taps and weights, row and column reach."""
    (row_taps, row_weights, row_reach), (column_taps, column_weights, column_reach) = (
        _bilinear_axis(size, scale) for size, scale in zip(run.sources[0].shape[1:], run.node.scale_factor,
                                                            strict=True))
    return row_taps, row_weights, column_taps, column_weights, row_reach, column_reach


def _bilinear_axis(in_size: int, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For one axis of a bilinear upsampling (align_corners=False, PyTorch's rule): per output index the
    two input indices (out, 2) and their weights (out, 2); per input index the output range that reads it
    (in, 2), end exclusive."""
    out = np.arange(in_size * scale)
    source = np.maximum((out.astype(np.float32) + np.float32(0.5)) * np.float32(1 / scale) - np.float32(0.5),
                        np.float32(0))
    first = source.astype(np.int64)
    taps = np.stack([first, np.minimum(first + 1, in_size - 1)], 1)
    upper = (source - first).astype(np.float32)
    weights = np.stack([np.float32(1) - upper, upper], 1)
    reach = np.stack([np.searchsorted(taps[:, 1], np.arange(in_size)),
                      np.searchsorted(taps[:, 0], np.arange(in_size), side="right")], 1)
    return taps, weights, reach


def _join(kernel):
    def rule(backend: SparseBackend, run: _NodeRun) -> None:
        if run.fresh or not _rowwise(run) or (run.node.kind == "Concat" and run.node.axis % 3 != 0):
            return backend._dense(run)
        union = run.dirty_buffer
        count = kernels.union_positions(tuple(s.dirty for s in run.sources), run.stamp, run.epoch, union)
        count = kernel(tuple(s.rows for s in run.sources), union[:count], run.rows, union)
        run.dirty, run.wire = union[:count], run.value  # changed rows overwrite the union in place, in order
    return rule


def _chain(backend: SparseBackend, run: _NodeRun) -> None:
    """An Add → ReLU → SigmaDelta chain starting at ``run`` (see ``_elementwise_chains``)."""
    chain = backend._chains[run.name]
    if run.fresh or not _rowwise(run):
        for member in chain:
            backend._rules[member.name](backend, member)
        return
    if run.node.kind == "Add":
        positions = run.dirty_buffer
        count = kernels.union_positions(tuple(s.dirty for s in run.sources), run.stamp, run.epoch, positions)
        positions = positions[:count]
    else:
        positions = run.sources[0].dirty
    last = chain[-1]
    plan = backend._sigma_deltas.get(last.name)
    if plan is None:  # ends at a ReLU: its changed rows are the dirty set
        count, _ = kernels.elementwise_rows(tuple(s.rows for s in run.sources), positions, True, last.rows,
                                            _NO_ROWS, _NO_ROWS, last.dirty_buffer, _NO_ROWS)
        last.dirty, last.wire = last.dirty_buffer[:count], last.value
    else:
        count, last.nonzero = kernels.elementwise_rows(
            tuple(s.rows for s in run.sources), positions, chain[-2].node.kind == "ReLU", _NO_ROWS, last.rows,
            plan.threshold, plan.event_positions, plan.event_values)
        last.dirty = plan.event_positions[:count]
        last.wire = SparseWire(last.dirty, plan.event_values[:count], last.shape)
    for member in chain[:-1]:  # read by nobody but the next member, and not stored (see _elementwise_chains)
        member.dirty, member.wire = positions, member.value


def _done_by_chain(backend: SparseBackend, run: _NodeRun) -> None:
    """A later member of a chain: computed with its first node."""


def _output(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = run.sources
    run.value, run.dirty, run.wire = source.value, source.dirty, source.value


_SPARSE_RULES = {
    "ReLU": _relu,
    "MaxPool2d": _pool,
    "AvgPool2d": _pool,
    "SumPool2d": _pool,
    "Upsample": _upsample,
    "Add": _join(kernels.add_rows),
    "Concat": _join(kernels.concat_rows),
}
