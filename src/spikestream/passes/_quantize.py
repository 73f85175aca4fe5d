"""Fixed-point quantization for radix execution (E3NE's rule, arXiv 2111.10027).

Every value of the quantized graph is an integer times a per-tensor step; every step is a power of
two times the input step, so rescaling is a shift:

- input: the radix integers q = clip(⌊x·(2^T − 1) + ½⌋, 0, 2^T − 1), step s_0 = 1/(2^T − 1);
- weights, per layer: range R = mean|w| + 3·std|w| rounded up to a power of two (``rounding``),
  step s_w = R / 2^(B−1), w_q = clip(⌊w/s_w + ½⌋, −2^(B−1), 2^(B−1) − 1) for B = ``weight_bits``
  (weights beyond R saturate: the 3σ rule trades a few outliers for resolution; rounding R to the
  *nearest* power of two instead saturates up to 3% of fmnist-cnn's FC weights and costs it 1.2 points);
- accumulator: S = W_q ⋆ q_in + b_q with step s_acc = s_w · s_in and the fixed-point bias
  b_q = ⌊b/s_acc + ½⌋;
- activation after a ReLU: the calibrated range R_a (a high percentile of the ANN activation)
  fixes the shift k = max(0, ⌈log2(R_a / ((2^T − 1)·s_acc))⌉) (rounded up, so that nothing below R_a
  saturates; or to the nearest integer), and the ReLU becomes
  ``Requantize(k, T)``: q_out = min(⌊(max(S, 0) + 2^(k−1)) / 2^k⌋, 2^T − 1), step s_acc · 2^k;
- the last layer's accumulator is the output; its step is stored as ``quantize.output_scale``.
"""

from __future__ import annotations

import math

import numpy as np

from spikestream import ir
from spikestream.engine._radix import BITS_KEY, OUTPUT_SCALE_KEY, WEIGHT_BITS_KEY
from spikestream.passes._calibration import activation_ranges, check_ann, inherited_scale, rectified_layers
from spikestream.passes._registry import register_pass

FLOAT32_EXACT = 2**24  # IR arrays are float32, which hold every integer up to 2^24 exactly


def _power_of_two_exponent(value: float, rounding: str) -> int:
    if rounding not in ("nearest", "up"):
        raise ValueError(f"rounding must be 'nearest' or 'up', not {rounding!r}")
    exponent = math.log2(value)
    return round(exponent) if rounding == "nearest" else math.ceil(exponent - 1e-9)


def power_of_two_weight_step(weight: np.ndarray, weight_bits: int, rounding: str = "up") -> float:
    """s_w = R / 2^(B−1) with R = mean|w| + 3·std|w| rounded to a power of two (up by default, so
    only weights beyond the 3σ range saturate), the E3NE weight step."""
    magnitude = np.abs(np.asarray(weight, dtype=np.float64))
    spread = float(magnitude.mean() + 3 * magnitude.std())
    if spread <= 0:
        return 1.0  # all-zero weights: any step represents them
    return 2.0 ** (_power_of_two_exponent(spread, rounding) - (weight_bits - 1))


def quantize_weights(weight: np.ndarray, step: float, weight_bits: int) -> np.ndarray:
    """Signed ``weight_bits`` integers ⌊w/step + ½⌋, saturated (float32 array of integers)."""
    low, high = -(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1) - 1
    return np.clip(np.floor(np.asarray(weight, np.float64) / step + 0.5), low, high).astype(np.float32)


def requantize_shift(activation_range: float, accumulator_step: float, bits: int, rounding: str = "up") -> int:
    """k ≥ 0 such that the largest activation, (2^T − 1) · s_acc · 2^k, is the smallest such value at
    or above the range R_a (``rounding="up"``: nothing below R_a saturates, at up to one bit less
    resolution), or the one nearest to it in log (``"nearest"``)."""
    if activation_range <= 0:
        return 0
    return max(0, _power_of_two_exponent(activation_range / ((2**bits - 1) * accumulator_step), rounding))


@register_pass("quantize")
def quantize(graph: ir.Graph, calibration, bits: int = 6, weight_bits: int = 8,
             percentile: float = 99.99, rounding: str = "up") -> ir.Graph:
    """A float ReLU network → the integer network that radix execution runs (module docstring).

    ``calibration``: sample inputs (N, *input_shape), floats in [0, 1] or uint8 images, used for
    the activation ranges (``percentile`` of each ReLU's outputs; 100 = the maximum). ``bits``: T,
    the radix bits of the input and of every activation. The quantized graph's Input takes the radix
    integers q, not x; every ReLU is replaced by a ``Requantize`` node of the same name; the graph
    metadata records ``quantize.bits``, ``quantize.weight_bits`` and ``quantize.output_scale``.
    ``rounding``: how the weight and activation ranges become powers of two, "up" (nothing inside
    them saturates) or "nearest" (in log; saturates up to √2 below the range, for half a bit more
    resolution).
    """
    if not 1 <= int(bits) <= ir.MAX_REQUANTIZE_BITS or int(bits) != bits:
        raise ir.IRError(f"quantize: bits (radix T) must be an integer from 1 to {ir.MAX_REQUANTIZE_BITS}, "
                         f"not {bits!r}")
    if not 2 <= int(weight_bits) <= 16 or int(weight_bits) != weight_bits:
        raise ir.IRError(f"quantize: weight_bits must be an integer from 2 to 16, not {weight_bits!r}")
    bits, weight_bits = int(bits), int(weight_bits)
    check_ann(graph, "quantize")
    owners = rectified_layers(graph, "quantize")
    relus = [name for name in graph.order if name in owners]
    ranges = activation_ranges(graph, calibration, relus, percentile)
    steps: dict[str, float] = {}  # the float value of one integer unit of each node's output
    replaced: dict[str, ir.Node] = {}
    for name in graph.order:
        node = graph.nodes[name]
        if isinstance(node, ir.Input):
            steps[name] = 1.0 / (2**bits - 1)
        elif isinstance(node, ir.SynapticNode):
            (source,) = graph.predecessors(name)
            weight_step = power_of_two_weight_step(node.weight, weight_bits, rounding)
            steps[name] = weight_step * steps[source]  # accumulator step
            bias = None
            if node.bias is not None:
                bias = np.floor(np.asarray(node.bias, np.float64) / steps[name] + 0.5)
                if np.abs(bias).max() >= FLOAT32_EXACT:
                    raise ir.IRError(f"quantize: {name!r} has a bias of {np.abs(node.bias).max():g}, beyond 2^24 "
                                     f"accumulator steps of {steps[name]:g}; use fewer weight_bits or bits")
                bias = bias.astype(np.float32)
            replaced[name] = node.replace(weight=quantize_weights(node.weight, weight_step, weight_bits), bias=bias)
        elif node.kind == "ReLU":
            accumulator_step = inherited_scale(graph, name, steps)  # max-pooling between keeps the step
            shift = requantize_shift(ranges[name], accumulator_step, bits, rounding)
            replaced[name] = ir.Requantize(name, shift=shift, bits=bits)  # commutes with max-pooling, as ReLU
            steps[name] = accumulator_step * 2**shift
        else:
            steps[name] = inherited_scale(graph, name, steps)
    for name in graph.synaptic_layers():  # a synaptic layer needs T-bit inputs: an Input or a Requantize
        if not _radix_input(graph, graph.predecessors(name)[0]):
            raise ir.UnsupportedError(f"quantize: the input of {name!r} is not a T-bit activation (a synaptic layer "
                                      "without a ReLU feeds it); only the last layer may skip its ReLU")
    (output,) = graph.output_names
    metadata = {**graph.metadata, BITS_KEY: str(bits), WEIGHT_BITS_KEY: str(weight_bits),
                OUTPUT_SCALE_KEY: repr(steps[output])}
    return graph.with_changes(nodes=[replaced.get(n.name, n) for n in graph.nodes.values()], metadata=metadata)


_PASS_THROUGH = ("MaxPool2d", "Flatten", "Upsample", "Concat")  # keep integers within [0, 2^T − 1]


def _radix_input(graph: ir.Graph, name: str) -> bool:
    node = graph.nodes[name]
    if node.kind in ("Input", "ReLU"):  # ReLUs become Requantize nodes
        return True
    if node.kind in _PASS_THROUGH:
        return all(_radix_input(graph, p) for p in graph.predecessors(name))
    return False
