"""A quantized IR graph → the stages the RTL computes, one per synaptic layer.

A stage is what one hardware unit does for one image (E3NE's layer-synchronous radix scheme,
``docs/semantics.md``):

- consume the T bit planes of its T-bit input, most significant first, with spike-gated accumulation
  S ← 2·S + Σ w·s_t, so that after T planes S = W ⋆ q;
- add the quantized bias and requantize: y = min(max((S + c) >> k, 0), 2^T − 1) with c = b + 2^(k−1)
  (c = b for k = 0). This equals ReLU, round-half-up shift and clip of S + b (``neurons.requantize``):
  for S + b ≥ 0 it is ⌊(S + b + 2^(k−1)) / 2^k⌋, and for S + b < 0 the shifted value is ≤ 0;
- max-pool the T-bit values. The graph may pool the accumulators before requantizing (fmnist-cnn does);
  requantization is monotone, so max and requantize commute and pooling the T-bit values is exact and
  4x cheaper in hardware.

The last stage has no requantization when the graph ends on a synaptic layer: it outputs S + b.
Only feed-forward chains of the kinds in ``SUPPORTED`` lower; anything else raises
``UnsupportedLayerError`` naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikestream import ir
from spikestream.engine import radix_bits
from spikestream.engine._radix import WEIGHT_BITS_KEY

SUPPORTED = ("Conv2d (groups=1, dilation=1), MaxPool2d (kernel = stride, no padding), Requantize, Flatten and "
             "Linear, in a chain Input → ... → Output whose every layer but the last is requantized")


class UnsupportedLayerError(ir.UnsupportedError):
    """A node the RTL generator cannot build; the message names it and lists what is supported."""


@dataclass(frozen=True, eq=False)
class ConvStage:
    """Conv2d (+ bias) → requantize → max-pool, on a (C, H, W) T-bit input."""

    name: str  # the Conv2d node
    weight: np.ndarray  # (C_out, C_in, k_h, k_w) int64, signed weight_bits integers
    bias: np.ndarray  # (C_out,) int64, in accumulator units
    stride: tuple[int, int]
    padding: tuple[int, int]
    pool: tuple[int, int]  # max-pooling window = stride; (1, 1): none
    shift: int | None  # k of the requantization; None: the stage outputs S + b
    input_shape: tuple[int, int, int]  # (C_in, H_in, W_in)
    conv_shape: tuple[int, int, int]  # (C_out, H_c, W_c) before pooling
    output_shape: tuple[int, int, int]  # (C_out, H_c // pool_h, W_c // pool_w)
    output_node: str  # graph node whose value equals this stage's output

    kind = "conv"

    @property
    def kernel(self) -> tuple[int, int]:
        return self.weight.shape[2], self.weight.shape[3]

    @property
    def used_conv_shape(self) -> tuple[int, int]:
        """Rows and columns of the convolution that some pooling window uses (the rest are never computed)."""
        return self.output_shape[1] * self.pool[0], self.output_shape[2] * self.pool[1]


@dataclass(frozen=True, eq=False)
class LinearStage:
    """Linear (+ bias) → requantize, on a flat T-bit input."""

    name: str
    weight: np.ndarray  # (out_features, in_features) int64
    bias: np.ndarray  # (out_features,) int64
    shift: int | None
    input_shape: tuple[int]  # (in_features,)
    output_shape: tuple[int]  # (out_features,)
    output_node: str

    kind = "linear"


Stage = ConvStage | LinearStage


@dataclass(frozen=True, eq=False)
class HardwarePlan:
    """What the generator builds and the reference computes: the stages of one quantized graph."""

    stages: tuple[Stage, ...]
    bits: int  # T, radix bits of the input and of every activation
    weight_bits: int  # B, signed weight bits
    input_shape: tuple[int, ...]
    output_scale: float  # output integer × scale ≈ the float graph's output

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.stages[-1].output_shape

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage named {name!r}; stages: {', '.join(s.name for s in self.stages)}")


def requantize_offset(bias: np.ndarray, shift: int | None) -> np.ndarray:
    """c = b + 2^(k−1) (k > 0) or b: the constant added before the shift (module docstring)."""
    bias = np.asarray(bias, np.int64)
    if shift:
        return bias + (1 << (shift - 1))
    return bias


def _unsupported(node: ir.Node, why: str = "") -> UnsupportedLayerError:
    reason = f" ({why})" if why else ""
    return UnsupportedLayerError(f"the RTL generator does not support node {node.name!r} ({node.kind}){reason}; "
                                 f"it supports {SUPPORTED}")


def _integers(node: ir.SynapticNode, field: str) -> np.ndarray:
    value = getattr(node, field)
    if value is None:
        return np.zeros(node.weight.shape[0] if field == "bias" else 0, np.int64)
    array = np.asarray(value, np.float64)
    if not np.array_equal(array, np.round(array)):
        raise ir.IRError(f"{node.name}: the RTL needs integer {field}s, got fractional values; quantize the graph "
                         f"first (spikestream.passes.quantize)")
    return np.round(array).astype(np.int64)


def _chain(graph: ir.Graph) -> list[ir.Node]:
    if len(graph.input_names) != 1 or len(graph.output_names) != 1:
        raise UnsupportedLayerError(f"the RTL generator needs one Input and one Output, found inputs "
                                    f"{graph.input_names} and outputs {graph.output_names}; it supports {SUPPORTED}")
    nodes = [graph.nodes[graph.input_names[0]]]
    while not isinstance(nodes[-1], ir.Output):
        successors = graph.successors(nodes[-1].name)
        if len(successors) != 1:
            raise _unsupported(nodes[-1], f"it feeds {len(successors)} nodes, the generator needs a chain")
        node = graph.nodes[successors[0]]
        if node.arity != 1:
            raise _unsupported(node, "it joins several inputs")
        nodes.append(node)
    return nodes[1:-1]


def lower(graph: ir.Graph) -> HardwarePlan:
    """The stages of a quantized graph (``passes.quantize``); raises ``UnsupportedLayerError`` for any other."""
    bits = radix_bits(graph)
    if bits is None:
        relu = next((node for node in graph if node.kind == "ReLU"), None)
        where = f" (node {relu.name!r} is a float ReLU)" if relu is not None else ""
        raise ir.IRError(f"the RTL generator needs a quantized graph with Requantize nodes{where}; run "
                         f"spikestream.passes.quantize first")
    chain = _chain(graph)
    stages: list[Stage] = []
    shape = tuple(graph.input_shape)
    index = 0
    while index < len(chain):
        node = chain[index]
        if isinstance(node, ir.Flatten):
            if len(shape) == 3 and (node.start_dim % 3, node.end_dim % 3) != (0, 2):
                raise _unsupported(node, "only a Flatten of the whole (C, H, W) activation is supported")
            shape = (int(np.prod(shape)),)
            index += 1
            continue
        if not isinstance(node, (ir.Conv2d, ir.Linear)):
            raise _unsupported(node, "expected a Conv2d or Linear here" if node.kind in ("MaxPool2d", "Requantize")
                               else "")
        stage, index = _lower_stage(graph, chain, index, shape, bits)
        stages.append(stage)
        shape = stage.output_shape
    if not stages:
        raise UnsupportedLayerError(f"the graph has no Conv2d or Linear layer; the RTL generator supports {SUPPORTED}")
    for stage in stages[:-1]:
        if stage.shift is None:
            raise UnsupportedLayerError(f"layer {stage.name!r} feeds another layer without a Requantize; the RTL "
                                        f"generator supports {SUPPORTED}")
    weight_bits = int(graph.metadata.get(WEIGHT_BITS_KEY, 0)) or _weight_bits_needed(stages)
    for stage in stages:
        low, high = int(stage.weight.min()), int(stage.weight.max())
        if low < -(2 ** (weight_bits - 1)) or high > 2 ** (weight_bits - 1) - 1:
            raise ir.IRError(f"{stage.name}: weights span [{low}, {high}], beyond {weight_bits}-bit signed integers")
    from spikestream.engine._radix import output_scale

    return HardwarePlan(tuple(stages), bits, weight_bits, tuple(graph.input_shape), output_scale(graph))


def _weight_bits_needed(stages: list[Stage]) -> int:
    largest = max(max(-int(s.weight.min()), int(s.weight.max()) + 1) for s in stages)
    return max(2, int(largest - 1).bit_length() + 1)


def _lower_stage(graph: ir.Graph, chain: list[ir.Node], index: int, shape: tuple[int, ...],
                 bits: int) -> tuple[Stage, int]:
    node = chain[index]
    weight, bias = _integers(node, "weight"), _integers(node, "bias")
    pool: tuple[int, int] = (1, 1)
    shift: int | None = None
    output_node = node.name
    index += 1
    while index < len(chain) and chain[index].kind in ("MaxPool2d", "Requantize"):
        follower = chain[index]
        if isinstance(follower, ir.MaxPool2d):
            if not isinstance(node, ir.Conv2d) or pool != (1, 1):
                raise _unsupported(follower, "one max-pooling per convolution")
            if follower.kernel_size != follower.stride or follower.padding != (0, 0):
                raise _unsupported(follower, f"kernel {follower.kernel_size}, stride {follower.stride}, padding "
                                             f"{follower.padding}")
            pool = follower.kernel_size
        else:
            if shift is not None:
                raise _unsupported(follower, "two requantizations in a row")
            if follower.bits != bits:
                raise ir.IRError(f"{follower.name}: Requantize to {follower.bits} bits in a {bits}-bit radix graph")
            shift = follower.shift
        output_node = follower.name
        index += 1
    if isinstance(node, ir.Linear):
        if len(shape) != 1:
            raise _unsupported(node, f"a Linear layer needs a flat input, got {shape}; add a Flatten")
        return LinearStage(node.name, weight, bias, shift, tuple(shape), (weight.shape[0],), output_node), index
    if len(shape) != 3:
        raise _unsupported(node, f"a Conv2d layer needs a (C, H, W) input, got {shape}")
    if node.groups != 1 or node.dilation != (1, 1):
        raise _unsupported(node, f"groups={node.groups}, dilation={node.dilation}")
    conv_shape = graph.shapes[node.name]
    if conv_shape[1] < pool[0] or conv_shape[2] < pool[1]:
        raise _unsupported(chain[index - 1], f"pooling {pool} is larger than the convolution output {conv_shape}")
    output_shape = (conv_shape[0], conv_shape[1] // pool[0], conv_shape[2] // pool[1])
    stage = ConvStage(node.name, weight, bias, node.stride, node.padding, pool, shift, tuple(shape),
                      tuple(conv_shape), output_shape, output_node)
    return stage, index
