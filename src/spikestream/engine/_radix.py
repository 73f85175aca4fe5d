"""The integer reference: layer-synchronous radix execution of a quantized graph (E3NE).

A quantized graph (``passes.quantize``) holds integer weights and biases, ``Requantize`` nodes and
T-bit activations; its Input takes the radix integers q = clip(⌊x·(2^T − 1) + ½⌋, 0, 2^T − 1).
Each synaptic layer consumes all T bit planes of its input, most significant first, with
``neurons.radix_accumulate_step``: S ← 2·S + W ⋆ s_t, so after T steps S = W ⋆ q; then the bias is
added and the following ``Requantize`` node shifts and clips S back to T bits. Layers run one after
the other (layer-synchronous), as in E3NE's hardware.

Everything is computed on float64 tensors holding integers (exact up to 2^53; accumulators are
checked against that bound), so the result is bit-exact with ``requantize(W ⋆ q + b)`` and is the
single oracle for fixed-point behaviour (DESIGN.md §2): the RTL is checked against it.

Counts (``docs/semantics.md``): a layer's events are the ones in the bit planes of its input,
Σ popcount(q_in); synops weigh each one by its fan-out; dense MACs are one ANN pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from spikestream import ir, neurons
from spikestream.encoding import radix_bit_planes, radix_quantize
from spikestream.engine._counting import LayerCount, LayerCounter
from spikestream.engine._ops import DENSE_OPS, node_tensors

# Graph metadata written by passes.quantize (Graph.metadata values are strings).
BITS_KEY = "quantize.bits"  # T, radix bits of every activation (and of the input)
WEIGHT_BITS_KEY = "quantize.weight_bits"  # bits of the signed integer weights
OUTPUT_SCALE_KEY = "quantize.output_scale"  # float: output integer × scale ≈ the float graph's output

# Kinds that map integers to integers, so a quantized graph may use them anywhere.
RADIX_KINDS = ("Input", "Output", "Conv2d", "ConvTranspose2d", "Linear", "MaxPool2d", "SumPool2d", "Flatten",
               "Upsample", "Add", "Concat", "ReLU", "Requantize")
EXACT_LIMIT = 2.0**53  # float64 holds every integer up to this exactly


class RadixResult(NamedTuple):
    output: Tensor  # (B, *output_shape) float64 integers: the Output node's value
    values: dict[str, Tensor]  # every node's integer value, (B, *shape) float64
    events: Tensor  # (B, L) int64: ones in the bit planes entering each synaptic layer, in layer order
    synops: Tensor  # (B, L) int64: events weighted by their fan-out


def radix_bits(graph: ir.Graph) -> int | None:
    """T of a quantized graph (from its metadata or its Requantize nodes), or None for a float graph."""
    found = {node.bits for node in graph if isinstance(node, ir.Requantize)}
    if BITS_KEY in graph.metadata:
        found.add(int(graph.metadata[BITS_KEY]))
    if len(found) > 1:
        raise ir.IRError(f"quantized graph mixes radix bit widths {sorted(found)}; one T per graph is supported")
    return found.pop() if found else None


def output_scale(graph: ir.Graph) -> float:
    """Scale from the output integers to the float graph's units (1.0 when not recorded)."""
    return float(graph.metadata.get(OUTPUT_SCALE_KEY, 1.0))


def _check_integers(node: ir.Node) -> None:
    for name in node.array_fields:
        value = getattr(node, name)
        if value is not None and not np.array_equal(value, np.round(value)):
            raise ir.IRError(f"{node.name}: radix execution needs integer {name}s, got fractional values; "
                             f"quantize the graph first (spikestream.passes.quantize)")


class RadixExecutor:
    """Integer, layer-synchronous evaluation of a quantized graph; see the module docstring."""

    def __init__(self, graph: ir.Graph, bits: int | None = None, device: torch.device | str = "cpu"):
        found = radix_bits(graph)
        self.bits = int(bits if bits is not None else found or 0)
        if self.bits < 1:
            raise ir.IRError("radix execution needs the number of bits T: the graph has no Requantize node or "
                             f"'{BITS_KEY}' metadata, and no bits were given")
        if found is not None and found != self.bits:
            raise ir.IRError(f"the graph is quantized for T = {found} radix bits, not {self.bits}; "
                             f"use a radix encoding with steps={found}")
        for node in graph:
            if node.kind not in RADIX_KINDS or (isinstance(node, ir.Upsample) and node.mode != "nearest"):
                raise ir.UnsupportedError(f"node {node.name!r} ({node.kind}) has no integer radix execution; "
                                          f"supported: {', '.join(RADIX_KINDS)} (Upsample: nearest)")
            _check_integers(node)
        self.graph = graph
        self.device = torch.device(device)
        self.layers = graph.synaptic_layers()
        self.params = {name: {key: value.to(torch.float64) for key, value in node_tensors(node, device).items()}
                       for name, node in graph.nodes.items()}
        self.counters = {name: LayerCounter(graph.nodes[name], graph.shapes[graph.predecessors(name)[0]],
                                            graph.shapes[name], device=self.device) for name in self.layers}

    def quantize(self, x: Tensor) -> Tensor:
        """Frames in [0, 1] to the graph's input integers q (float64)."""
        return radix_quantize(x, self.bits).to(torch.float64)

    def run(self, q: Tensor) -> RadixResult:
        """Evaluate the graph on input integers ``q`` (B, *input_shape) in [0, 2^T − 1]."""
        q = torch.as_tensor(q).to(device=self.device, dtype=torch.float64)
        if tuple(q.shape[1:]) != self.graph.input_shape:
            raise ir.IRError(f"radix execution expects (B, *{self.graph.input_shape}), got {tuple(q.shape)}")
        values: dict[str, Tensor] = {}
        events, synops = [], []
        for name in self.graph.order:
            node = self.graph.nodes[name]
            inputs = [values[p] for p in self.graph.predecessors(name)] if node.arity != 0 else [q]
            if isinstance(node, ir.SynapticNode):
                planes = self.bit_planes(inputs[0], name)  # (T, B, *in_shape), MSB first
                values[name] = self._accumulate(node, planes)
                ones = planes.sum(0)  # popcount of every input integer
                batch_dims = tuple(range(1, ones.dim()))
                events.append(ones.sum(batch_dims))
                synops.append((ones * self.counters[name].fanout).sum(batch_dims))
            else:
                values[name] = DENSE_OPS[node.kind](node, self.params[name], inputs)
        def per_layer(parts: list[Tensor]) -> Tensor:  # (B, L) int64
            if not parts:
                return torch.zeros((q.shape[0], 0), dtype=torch.int64, device=self.device)
            return torch.stack(parts, 1).round().to(torch.int64)

        return RadixResult(values[self.graph.output_names[0]], values, per_layer(events), per_layer(synops))

    def bit_planes(self, value: Tensor, layer: str = "") -> Tensor:
        """(T, *value.shape) float64 bit planes, MSB first, of a layer's integer input."""
        try:
            return radix_bit_planes(value.to(torch.int64), self.bits).to(torch.float64)
        except ValueError as error:
            raise ir.IRError(f"input of {layer!r} does not fit {self.bits} radix bits ({error}); every synaptic "
                             "layer must be fed by the input or a Requantize node") from None

    def _accumulate(self, node: ir.SynapticNode, planes: Tensor) -> Tensor:
        """S ← 2·S + W ⋆ s_t over the T planes (MSB first), then S + b."""
        op, weight = DENSE_OPS[node.kind], self.params[node.name]["weight"]
        synapse = neurons.RadixParams(lambda bits: op(node, {"weight": weight}, [bits]))  # no bias per plane
        batch = planes.shape[1]
        state = neurons.RadixState(torch.zeros((batch, *self.graph.shapes[node.name]), dtype=torch.float64,
                                               device=self.device))
        for plane in planes:  # not neurons.scan: it would keep all T accumulators
            accumulator, state = neurons.radix_accumulate_step(plane, state, synapse)
        if "bias" in self.params[node.name]:
            bias = self.params[node.name]["bias"]
            accumulator = accumulator + bias.reshape(bias.shape[0], *([1] * (accumulator.dim() - 2)))
        if float(accumulator.abs().max()) >= EXACT_LIMIT:
            raise ir.IRError(f"{node.name}: an accumulator reached 2^53, beyond exact integer arithmetic")
        return accumulator


def radix_frame_counts(executor: RadixExecutor, counters: Sequence[LayerCounter], sources: Sequence[str],
                       result: RadixResult) -> list[LayerCount]:
    """Full per-layer counts (events, synops and work) of one frame (batch 1), summed over its T
    bit planes, as a Stream records them in its Trace."""
    counts = []
    for counter, source in zip(counters, sources, strict=True):
        total = None
        for plane in executor.bit_planes(result.values[source], source):  # (1, *in_shape) each
            count = counter.count(plane.to(torch.float32))
            total = count if total is None else LayerCount(*(a + b for a, b in zip(total, count, strict=True)))
        counts.append(total)
    return counts
