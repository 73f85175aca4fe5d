"""The sparse backend: a sigma-delta network computes only from the pixels whose inputs changed.

Every node keeps its current value as a dense channels-last tensor ``(1, C, H, W)``, so that
``flat = (H·W, C)`` is a view whose rows are pixels. Each step a node learns which of its input
pixels changed (its *dirty* set, flat positions) and updates only those rows:

- a SigmaDelta node compares its input with its reconstruction at the dirty pixels and emits the
  rows that crossed θ as a ``SparseWire`` (positions, values);
- a convolution fed by such a wire is linear, so it accumulates W·y: one GEMM of the events with
  the weights gives every tap's contribution, and each tap is scatter-added (``index_add_``) into
  the shifted output pixels (per-pixel gather–GEMM–scatter); its dirty set is the set of pixels
  it touched;
- ReLU, pooling, nearest upsampling, Add and Concat recompute their output at the dirty pixels.

A node falls back to the dense computation (whole map, what the dense backend does) when its input
activity is above a crossover fraction measured per layer by ``calibrate`` — dense BLAS beats
scatter at high activity — and on the first step after a reset, when everything changes.
Kinds without a sparse rule (spiking neurons, Linear, Flatten, ...) always run densely.

The sparse backend accumulates W·y where the dense backend evaluates W·â + b; both are exact in
real arithmetic and agree to float rounding (tests and benchmarks report the difference).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spikestream import ir, neurons
from spikestream.engine._executor import StepResult, check_executable
from spikestream.engine._ops import DENSE_OPS, node_tensors
from spikestream.engine._stateful import STATEFUL
from spikestream.errors import InputError

DEFAULT_CROSSOVER = 0.25  # fraction of active pixels above which a layer runs densely, before calibration


@dataclass
class SparseWire:
    """Events of one step as rows: ``values[i]`` (C,) is what pixel ``positions[i]`` sends."""

    positions: Tensor  # (n,) int64 flat positions in the H·W grid
    values: Tensor  # (n, C)
    shape: tuple[int, ...]  # per-sample (C, H, W)

    def dense(self) -> Tensor:
        """(1, C, H, W) tensor with the events scattered into zeros."""
        channels, height, width = self.shape
        out = torch.zeros((1, channels, height, width), dtype=self.values.dtype).contiguous(
            memory_format=torch.channels_last)
        flat_view(out).index_copy_(0, self.positions, self.values)
        return out


def flat_view(value: Tensor) -> Tensor:
    """(1, C, H, W) channels-last -> (H·W, C) *view* whose rows are pixels (writes go through)."""
    return value.permute(0, 2, 3, 1).view(-1, value.shape[1])


def flat_rows(value: Tensor) -> Tensor:
    """(1, C, H, W) in any layout -> (H·W, C) rows for reading (a copy when the layout needs one)."""
    return value.permute(0, 2, 3, 1).reshape(-1, value.shape[1])


def channels_last(value: Tensor) -> Tensor:
    return value.contiguous(memory_format=torch.channels_last) if value.dim() == 4 else value.contiguous()


class _Marker:
    """A reusable boolean map over a grid, to turn scattered positions into a sorted unique set."""

    def __init__(self, size: int):
        self.map = torch.zeros(size, dtype=torch.bool)

    def unique(self, *position_sets: Tensor) -> Tensor:
        self.map.zero_()
        for positions in position_sets:
            self.map[positions] = True
        return self.map.nonzero().squeeze(1)


class _NodeRun:
    """Per-node execution state of the sparse backend."""

    def __init__(self, node: ir.Node, shape: tuple[int, ...], sources: list[str]):
        self.node = node
        self.shape = shape
        self.sources = sources
        self.spatial = len(shape) == 3
        self.pixels = shape[1] * shape[2] if self.spatial else 0
        self.value: Tensor | None = None  # (1, *shape), channels-last when spatial
        self.dirty: Tensor | None = None  # flat positions changed this step; None: everything
        self.wire: Tensor | SparseWire | None = None
        self.marker = _Marker(self.pixels) if self.spatial else None
        self.crossover = DEFAULT_CROSSOVER

    @property
    def flat(self) -> Tensor:
        return flat_view(self.value)

    def too_active(self, count: int) -> bool:
        return count > self.crossover * self.pixels


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
        self.runs = {name: _NodeRun(graph.nodes[name], graph.shapes[name], graph.predecessors(name))
                     for name in graph.order}
        self.params = {}
        for node in graph:
            if node.kind in STATEFUL:
                self.params[node.name] = STATEFUL[node.kind].make_params(node, graph.shapes[node.name], graph.dt,
                                                                         self.device)
            else:
                self.params[node.name] = node_tensors(node, self.device)
        self._taps = {name: self._conv_taps(graph.nodes[name], graph.shapes[graph.predecessors(name)[0]],
                                            graph.shapes[name])
                      for name in graph.order if self._incremental(name)}
        self.state: dict[str, object] = {}
        self.batch = 0

    # --- preparation ----------------------------------------------------------------------------
    def _incremental(self, name: str) -> bool:
        """A convolution fed by a SigmaDelta node accumulates its input events."""
        node = self.graph.nodes[name]
        if node.kind not in ("Conv2d", "ConvTranspose2d") or node.groups != 1:
            return False
        return self.graph.nodes[self.graph.predecessors(name)[0]].kind == "SigmaDelta"

    @staticmethod
    def _conv_taps(node, in_shape, out_shape):
        """The weight as a (C_in, K·C_out) matrix and each tap's (dy, dx) offset rule."""
        weight = torch.tensor(np.array(node.weight))
        kh, kw = node.kernel_size
        if node.kind == "Conv2d":
            matrix = weight.permute(1, 2, 3, 0).reshape(weight.shape[1], kh * kw * weight.shape[0])
        else:  # ConvTranspose2d weight is (C_in, C_out, kh, kw)
            matrix = weight.permute(0, 2, 3, 1).reshape(weight.shape[0], kh * kw * weight.shape[1])
        offsets = torch.tensor([(ky * node.dilation[0], kx * node.dilation[1]) for ky in range(kh)
                                for kx in range(kw)])
        taps = (offsets[:, 0][None], offsets[:, 1][None])  # (1, K) row and column offsets
        return matrix.contiguous(), taps, out_shape[0]

    # --- state -------------------------------------------------------------------------------------
    def reset(self, batch: int = 1) -> None:
        if batch != 1:
            raise InputError("the sparse backend streams one sample at a time (batch of 1)")
        self.batch = 1
        self.state = {}
        for name, run in self.runs.items():
            node = run.node
            run.value = channels_last(torch.zeros((1, *run.shape), device=self.device))
            if name in self._taps and node.bias is not None:  # accumulators start at W·0 + b
                run.value += torch.as_tensor(np.array(node.bias)).reshape(1, -1, *([1] * (len(run.shape) - 1)))
            if node.kind in STATEFUL:
                if node.kind == "SigmaDelta":
                    self.state[name] = neurons.SigmaDeltaState(run.value)  # â, updated in place
                else:
                    self.state[name] = STATEFUL[node.kind].init_state((1, *run.shape), self.device)
        self._first_step = True

    # --- one step ----------------------------------------------------------------------------------
    def step(self, x: Tensor, gates: dict[str, Tensor] | None = None) -> StepResult:
        if self.batch != 1:
            self.reset(1)
        values, wires = {}, {}
        for name in self.graph.order:
            run = self.runs[name]
            kind = run.node.kind
            if kind == "Input":
                run.value, run.dirty = channels_last(x), None
                run.wire = run.value
            elif kind == "SigmaDelta":
                self._sigma_delta(run, gates.get(name) if gates else None)
            elif name in self._taps:
                self._accumulate(run)
            elif kind in _SPARSE_RULES and not self._first_step and run.spatial:
                _SPARSE_RULES[kind](self, run)
            else:
                self._dense(run)
            values[name] = run.value
            wires[name] = run.wire
        self._first_step = False
        return StepResult(values[self.output_name], values, wires)

    def _inputs(self, run: _NodeRun) -> list[_NodeRun]:
        return [self.runs[s] for s in run.sources]

    def _dense(self, run: _NodeRun) -> None:
        """Whole-map computation, exactly as the dense backend."""
        inputs = [r.value for r in self._inputs(run)]
        binding = STATEFUL.get(run.node.kind)
        if binding is None:
            run.value = channels_last(DENSE_OPS[run.node.kind](run.node, self.params[run.node.name], inputs))
        else:
            run.value, _, self.state[run.node.name] = binding.step(inputs[0], self.state[run.node.name],
                                                                   self.params[run.node.name], None)
        run.dirty, run.wire = None, run.value

    def _sigma_delta(self, run: _NodeRun, gate: Tensor | None) -> None:
        (source,) = self._inputs(run)
        reconstruction = run.value  # (1, C, H, W) channels-last; the state aliases it
        threshold = self.params[run.node.name].threshold
        if not run.spatial:  # vectors: dense, cheap
            run.value, run.wire, self.state[run.node.name] = STATEFUL["SigmaDelta"].step(
                source.value, self.state[run.node.name], self.params[run.node.name], gate)
            run.dirty = None
            return
        if source.dirty is None or source.too_active(len(source.dirty)) or gate is not None:
            delta = source.value - reconstruction
            send = delta.abs() >= threshold
            if gate is not None:
                send &= gate > 0
            events = torch.where(send, delta, torch.zeros((), dtype=delta.dtype))
            reconstruction += events
            active = flat_rows(send).any(1).nonzero().squeeze(1)
            if run.too_active(len(active)):
                run.dirty, run.wire = active, events
            else:
                run.dirty, run.wire = active, SparseWire(active, flat_rows(events)[active], run.shape)
            return
        positions = source.dirty
        delta = flat_rows(source.value)[positions] - flat_view(reconstruction)[positions]  # (n, C)
        if threshold.dim() == 3 and threshold.shape[1:] != (1, 1):  # one θ per neuron
            threshold = flat_rows(threshold[None].expand(1, *run.shape))[positions]
        elif threshold.dim():  # one θ per channel, (C, 1, 1)
            threshold = threshold.reshape(1, -1)
        send = delta.abs() >= threshold
        events = torch.where(send, delta, torch.zeros((), dtype=delta.dtype))
        rows = send.any(1)
        positions, events = positions[rows], events[rows]
        flat_view(reconstruction).index_add_(0, positions, events)
        run.dirty, run.wire = positions, SparseWire(positions, events, run.shape)

    def _accumulate(self, run: _NodeRun) -> None:
        """Accumulate W·y for a convolution fed by sigma-delta events."""
        (source,) = self._inputs(run)
        wire = source.wire
        node = run.node
        if self._first_step or isinstance(wire, Tensor) or run.too_active(len(wire.positions)):
            events = wire if isinstance(wire, Tensor) else wire.dense()
            params = {"weight": self.params[node.name]["weight"]}
            run.value += DENSE_OPS[node.kind](node, params, [events])
            run.dirty, run.wire = None, run.value
            return
        matrix, taps, out_channels = self._taps[node.name]
        in_w = source.shape[2]
        _, out_h, out_w = run.shape
        if len(wire.positions) == 0:
            run.dirty = wire.positions
            run.wire = run.value
            return
        contributions = (wire.values @ matrix).reshape(-1, out_channels)  # (n·K, C_out), tap-major per event
        py = (wire.positions // in_w)[:, None]  # (n, 1)
        px = (wire.positions % in_w)[:, None]
        dy, dx = taps  # (1, K) each
        stride_y, stride_x = node.stride
        pad_y, pad_x = node.padding
        if node.kind == "Conv2d":  # output o reads input o·s − p + d·k
            ny, nx = py + pad_y - dy, px + pad_x - dx  # (n, K)
            if stride_y == 1 and stride_x == 1:
                oy, ox = ny, nx
                valid = (oy >= 0) & (oy < out_h) & (ox >= 0) & (ox < out_w)
            else:
                oy, ox = ny.div(stride_y, rounding_mode="floor"), nx.div(stride_x, rounding_mode="floor")
                valid = ((ny % stride_y == 0) & (nx % stride_x == 0) & (oy >= 0) & (oy < out_h)
                         & (ox >= 0) & (ox < out_w))
        else:  # transposed: input i lands on output i·s − p + d·k
            oy, ox = py * stride_y - pad_y + dy, px * stride_x - pad_x + dx
            valid = (oy >= 0) & (oy < out_h) & (ox >= 0) & (ox < out_w)
        valid = valid.reshape(-1)
        targets = (oy * out_w + ox).reshape(-1)[valid]
        run.flat.index_add_(0, targets, contributions[valid])
        run.dirty = run.marker.unique(targets)
        run.wire = run.value

    # --- calibration ---------------------------------------------------------------------------------
    def calibrate(self, fractions=(0.02, 0.1, 0.3), repeats: int = 3) -> dict[str, float]:
        """Measure, per incremental layer, the activity at which the dense path becomes faster.
        Call it before streaming: it clears the state.

        Times the dense convolution and the gather–GEMM–scatter path at a few activity levels on
        random events, fits time = a + b·active, and sets the crossover where the line meets the
        dense time. Returns {layer: crossover fraction}.
        """
        generator = torch.Generator().manual_seed(0)
        crossovers = {}
        self.reset(1)
        for name in self._taps:
            run = self.runs[name]
            source = self.runs[run.sources[0]]
            channels = source.shape[0]
            pixels = source.pixels

            def timed(fn):
                fn()
                start = time.perf_counter()
                for _ in range(repeats):
                    fn()
                return (time.perf_counter() - start) / repeats

            dense_events = channels_last(torch.randn((1, *source.shape), generator=generator))
            params = {"weight": self.params[name]["weight"]}
            dense_time = timed(lambda e=dense_events, r=run, p=params: DENSE_OPS[r.node.kind](r.node, p, [e]))
            samples = []
            for fraction in fractions:
                count = max(1, int(fraction * pixels))
                positions = torch.randperm(pixels, generator=generator)[:count].sort().values
                wire = SparseWire(positions, torch.randn((count, channels), generator=generator), source.shape)

                def sparse_step(wire=wire, run=run, source=source):
                    source.wire = wire
                    self._first_step = False
                    run.crossover = 1.0
                    self._accumulate(run)

                samples.append((count, timed(sparse_step)))
            counts, times = np.array(samples, dtype=np.float64).T
            slope, intercept = np.polyfit(counts, times, 1)
            crossover = (dense_time - intercept) / slope / pixels if slope > 0 else 1.0
            run.crossover = float(np.clip(crossover, 0.0, 1.0))
            for successor in self.graph.successors(name):  # nodes on the same grid follow the same rule
                self.runs[successor].crossover = run.crossover
            crossovers[name] = run.crossover
        self.reset(1)  # calibration wrote into the accumulators
        return crossovers


# --- sparse recomputation rules for stateless spatial nodes --------------------------------------------


def _gather_rows(run: _NodeRun, positions: Tensor) -> Tensor:
    return flat_rows(run.value)[positions]


def _relu(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = backend._inputs(run)
    if source.dirty is None or source.too_active(len(source.dirty)):
        return backend._dense(run)
    positions = source.dirty
    run.flat[positions] = torch.relu(_gather_rows(source, positions))
    run.dirty, run.wire = positions, run.value


def _pool(reduce):
    def rule(backend: SparseBackend, run: _NodeRun) -> None:
        (source,) = backend._inputs(run)
        node = run.node
        k, s = node.kernel_size, node.stride
        if source.dirty is None or source.too_active(len(source.dirty)) or k != s or node.padding != (0, 0):
            return backend._dense(run)
        in_w = source.shape[2]
        _, out_h, out_w = run.shape
        py, px = source.dirty // in_w, source.dirty % in_w
        oy, ox = py // s[0], px // s[1]
        keep = (oy < out_h) & (ox < out_w)
        positions = run.marker.unique((oy * out_w + ox)[keep])
        qy, qx = positions // out_w, positions % out_w
        window = [(qy * s[0] + dy) * in_w + qx * s[1] + dx for dy in range(k[0]) for dx in range(k[1])]
        rows = flat_rows(source.value)[torch.stack(window, 1)]  # (n, k_h·k_w, C)
        run.flat[positions] = reduce(rows)
        run.dirty, run.wire = positions, run.value
    return rule


def _upsample(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = backend._inputs(run)
    node = run.node
    if node.mode != "nearest" or source.dirty is None or source.too_active(len(source.dirty)):
        return backend._dense(run)
    fy, fx = node.scale_factor
    in_w = source.shape[2]
    out_w = in_w * fx
    py, px = source.dirty // in_w, source.dirty % in_w
    children = torch.stack([(py * fy + dy) * out_w + px * fx + dx for dy in range(fy) for dx in range(fx)], 1)
    rows = _gather_rows(source, source.dirty)  # (n, C)
    run.flat[children.reshape(-1)] = rows.repeat_interleave(fy * fx, dim=0)
    run.dirty, run.wire = children.reshape(-1), run.value


def _join(combine):
    def rule(backend: SparseBackend, run: _NodeRun) -> None:
        sources = backend._inputs(run)
        if any(s.dirty is None for s in sources) or (run.node.kind == "Concat" and run.node.axis % 3 != 0):
            return backend._dense(run)
        positions = run.marker.unique(*[s.dirty for s in sources])
        if run.too_active(len(positions)):
            return backend._dense(run)
        run.flat[positions] = combine([_gather_rows(s, positions) for s in sources])
        run.dirty, run.wire = positions, run.value
    return rule


def _output(backend: SparseBackend, run: _NodeRun) -> None:
    (source,) = backend._inputs(run)
    run.value, run.dirty, run.wire = source.value, source.dirty, source.value


_SPARSE_RULES = {
    "ReLU": _relu,
    "MaxPool2d": _pool(lambda rows: rows.amax(1)),
    "AvgPool2d": _pool(lambda rows: rows.mean(1)),
    "Upsample": _upsample,
    "Add": _join(lambda rows: torch.stack(rows).sum(0)),
    "Concat": _join(lambda rows: torch.cat(rows, 1)),
    "Output": _output,
}
