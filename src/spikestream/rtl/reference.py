"""The integer reference of the RTL: what the generated hardware computes, bit for bit, in numpy int64.

It runs the stages of ``rtl._lowering`` in the hardware's order (``docs/rtl.md``):

1. radix input: q = ⌊p·(2^T − 1)/255 + ½⌋ for uint8 pixels p (exactly ``encoding.radix_quantize`` of
   p/255), whose T bits, most significant first, are the spike planes s_0 … s_{T−1};
2. per synaptic layer, spike-gated accumulation over the planes: S ← 2·S + Σ w·s_t
   (``neurons.radix_accumulate_step``), so that S = W ⋆ q after T planes;
3. quantized bias and power-of-two requantization: y = min(max((S + c) >> k, 0), 2^T − 1), c = b + 2^(k−1),
   which is ``neurons.requantize(S + b, k, T)`` (ReLU, round-half-up right shift, clip);
4. max pooling of the T-bit values (requantization is monotone, so this equals the graph's pooling of S).

The last layer outputs S + b. ``engine.RadixExecutor`` computes the same network in the graph's order
with float64 tensors; the two agree bit for bit (``tests/test_rtl_reference.py``, ``benchmarks/rtl.py``).
``float_quantized_logits`` is the same quantized network in float32 arithmetic (fake quantization),
the model whose accuracy the integer reference must keep.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from spikestream import ir
from spikestream.rtl._lowering import ConvStage, HardwarePlan, LinearStage, Stage, lower, requantize_offset

MAX_BATCH_ELEMENTS = 2**25  # int64 entries of one im2col block (256 MiB); larger batches are split


class ReferenceResult(NamedTuple):
    output: np.ndarray  # (B, *output_shape) int64: the last stage's output (S + b, or T-bit values)
    activations: dict[str, np.ndarray]  # stage name -> (B, *stage.output_shape) int64 stage outputs
    accumulators: dict[str, np.ndarray]  # stage name -> (B, *pre-pool shape) int64: S + b


def radix_encode_pixels(pixels: np.ndarray, bits: int) -> np.ndarray:
    """q = ⌊p·(2^T − 1)/255 + ½⌋ = ⌊(2·p·(2^T − 1) + 255) / 510⌋ for uint8 pixels, in exact integers.

    It equals ``encoding.radix_quantize(p / 255, T)`` for every pixel (checked for every T by the tests), and it
    is the content of the hardware input encoder's ROM."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        raise ir.IRError(f"radix_encode_pixels needs uint8 pixels, got {pixels.dtype}")
    levels = 2**bits - 1
    return (2 * pixels.astype(np.int64) * levels + 255) // 510


def radix_planes(q: np.ndarray, bits: int):
    """The spike planes s_t = ⌊q / 2^(T−1−t)⌋ mod 2, t = 0 … T−1 (most significant first)."""
    for t in range(bits):
        yield (q >> (bits - 1 - t)) & 1


def requantize_integers(accumulator: np.ndarray, offset: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """y = min(max((S + c) >> k, 0), 2^T − 1) with the per-channel offset c along axis 1."""
    offset = offset.reshape(1, -1, *([1] * (accumulator.ndim - 2)))
    return np.clip((accumulator + offset) >> shift, 0, 2**bits - 1)


def _conv_plane(plane: np.ndarray, stage: ConvStage, rows: int, columns: int) -> np.ndarray:
    """W ⋆ s for one 0/1 plane (B, C_in, H, W), only the first ``rows`` x ``columns`` outputs (int64)."""
    (pad_h, pad_w), (stride_h, stride_w) = stage.padding, stage.stride
    k_h, k_w = stage.kernel
    padded = np.pad(plane, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k_h, k_w), axis=(2, 3))  # (B, C, H', W', kh, kw)
    windows = windows[:, :, :rows * stride_h:stride_h, :columns * stride_w:stride_w]  # (B, C, rows, cols, kh, kw)
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(plane.shape[0] * rows * columns, -1)  # (B·r·c, C·kh·kw)
    kernel = stage.weight.reshape(stage.weight.shape[0], -1).T  # (C·kh·kw, C_out)
    out = patches @ kernel  # int64 matmul, exact
    return out.reshape(plane.shape[0], rows, columns, -1).transpose(0, 3, 1, 2)  # (B, C_out, rows, cols)


def _accumulate(stage: Stage, q: np.ndarray, bits: int) -> np.ndarray:
    """S ← 2·S + W ⋆ s_t over the T planes (MSB first); after T planes S = W ⋆ q (bias not added)."""
    if isinstance(stage, ConvStage):
        rows, columns = stage.used_conv_shape

        def synapse(plane):
            return _conv_plane(plane, stage, rows, columns)
    else:
        def synapse(plane):
            return plane @ stage.weight.T  # (B, in) x (in, out) -> (B, out)

    total = None
    for plane in radix_planes(q, bits):
        contribution = synapse(plane)
        total = contribution if total is None else 2 * total + contribution  # S ← 2·S + Σ w·s_t
    return total


def _max_pool(values: np.ndarray, pool: tuple[int, int]) -> np.ndarray:
    if pool == (1, 1):
        return values
    batch, channels, rows, columns = values.shape
    blocks = values.reshape(batch, channels, rows // pool[0], pool[0], columns // pool[1], pool[1])
    return blocks.max(axis=(3, 5))


def run_stage(stage: Stage, q: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """One stage on T-bit inputs q (B, *input_shape) -> (S + b, stage output)."""
    total = _accumulate(stage, q, bits)
    with_bias = total + stage.bias.reshape(1, -1, *([1] * (total.ndim - 2)))
    if stage.shift is None:
        values = with_bias
    else:
        values = requantize_integers(total, requantize_offset(stage.bias, stage.shift), stage.shift, bits)
    if isinstance(stage, ConvStage):
        values = _max_pool(values, stage.pool)
    return with_bias, values


def run_reference(plan: HardwarePlan, q: np.ndarray) -> ReferenceResult:
    """Run every stage on the radix integers q (B, *input_shape) in [0, 2^T − 1]."""
    q = np.asarray(q)
    if tuple(q.shape[1:]) != plan.input_shape:
        raise ir.IRError(f"the integer reference expects (B, *{plan.input_shape}), got {tuple(q.shape)}")
    if q.size and (q.min() < 0 or q.max() > 2**plan.bits - 1):
        raise ir.IRError(f"the integer reference needs inputs in [0, {2**plan.bits - 1}], got [{q.min()}, {q.max()}]")
    q = q.astype(np.int64)
    per_image = max(int(np.prod(plan.input_shape)), 1) * 64  # rough im2col size of one image
    chunk = max(1, MAX_BATCH_ELEMENTS // per_image)
    parts = [_run_chunk(plan, q[start:start + chunk]) for start in range(0, max(len(q), 1), chunk)]
    if len(parts) == 1:
        return parts[0]
    return ReferenceResult(np.concatenate([p.output for p in parts]),
                           {k: np.concatenate([p.activations[k] for p in parts]) for k in parts[0].activations},
                           {k: np.concatenate([p.accumulators[k] for p in parts]) for k in parts[0].accumulators})


def _run_chunk(plan: HardwarePlan, q: np.ndarray) -> ReferenceResult:
    activations, accumulators = {}, {}
    value = q
    for stage in plan.stages:
        if isinstance(stage, LinearStage):
            value = value.reshape(value.shape[0], -1)  # Flatten: (C, H, W) in C order
        accumulators[stage.name], value = run_stage(stage, value, plan.bits)
        activations[stage.name] = value
    return ReferenceResult(value, activations, accumulators)


class IntegerReference:
    """The integer reference of a quantized graph: ``encode`` pixels, ``run`` the stages, ``classify``."""

    def __init__(self, graph_or_plan: ir.Graph | HardwarePlan):
        self.plan = graph_or_plan if isinstance(graph_or_plan, HardwarePlan) else lower(graph_or_plan)

    @property
    def bits(self) -> int:
        return self.plan.bits

    def encode(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (B, *input_shape) → radix integers q (int64)."""
        return radix_encode_pixels(images, self.plan.bits)

    def run(self, q: np.ndarray) -> ReferenceResult:
        return run_reference(self.plan, q)

    def classify(self, images: np.ndarray) -> np.ndarray:
        """uint8 images → predicted class (argmax of the output integers), (B,) int64."""
        output = self.run(self.encode(images)).output
        return output.reshape(output.shape[0], -1).argmax(1)


def float_quantized_logits(float_graph: ir.Graph, quantized_graph: ir.Graph, images,
                           batch_size: int = 500) -> np.ndarray:
    """The quantized network in float32 arithmetic (fake quantization), in the graph's order.

    Inputs q·s_0 with s_0 = 1/(2^T − 1); per synaptic layer the dequantized weights w_q·s_w (s_w from
    ``passes._quantize.power_of_two_weight_step`` of the float weights) and bias b_q·s_acc; a Requantize
    node becomes y = clip(⌊ReLU(a)/s + ½⌋, 0, 2^T − 1)·s with s = s_acc·2^k; max pooling as in the graph.
    ``images``: float (B, *input_shape) in [0, 1] or uint8. Returns the float32 logits (B, *output_shape).
    """
    if len(images) > batch_size:
        return np.concatenate([float_quantized_logits(float_graph, quantized_graph, images[start:start + batch_size],
                                                      batch_size) for start in range(0, len(images), batch_size)])
    import torch
    import torch.nn.functional as F

    from spikestream.encoding import radix_quantize
    from spikestream.passes._quantize import power_of_two_weight_step, quantize_weights

    plan = lower(quantized_graph)
    bits, weight_bits = plan.bits, plan.weight_bits
    images = torch.as_tensor(np.asarray(images))
    x = images.to(torch.float32) / 255.0 if images.dtype == torch.uint8 else images.to(torch.float32)
    step = 1.0 / (2**bits - 1)
    value = radix_quantize(x, bits).to(torch.float32) * step
    with torch.no_grad():
        for name in quantized_graph.order:
            node = quantized_graph.nodes[name]
            if isinstance(node, (ir.Input, ir.Output)):
                continue
            if isinstance(node, ir.SynapticNode):
                float_weight = np.asarray(float_graph.nodes[name].weight)
                weight_step = power_of_two_weight_step(float_weight, weight_bits)
                if not np.array_equal(quantize_weights(float_weight, weight_step, weight_bits), node.weight):
                    raise ir.IRError(f"{name}: the quantized weights are not those of the float graph; pass the "
                                     f"float graph the quantized one was made from")
                step = step * weight_step
                weight = torch.from_numpy(np.asarray(node.weight, np.float32) * np.float32(weight_step))
                bias = None if node.bias is None else torch.from_numpy(np.asarray(node.bias, np.float32)
                                                                       * np.float32(step))
                if isinstance(node, ir.Conv2d):
                    value = F.conv2d(value, weight, bias, node.stride, node.padding)
                else:
                    value = F.linear(value, weight, bias)
            elif isinstance(node, ir.Requantize):
                step = step * 2**node.shift
                levels = torch.clamp(torch.floor(torch.relu(value) / np.float32(step) + 0.5), 0, 2**node.bits - 1)
                value = levels * np.float32(step)
            elif isinstance(node, ir.MaxPool2d):
                value = F.max_pool2d(value, node.kernel_size, node.stride)
            elif isinstance(node, ir.Flatten):
                value = torch.flatten(value, 1)
            else:
                raise ir.UnsupportedError(f"float_quantized_logits: node {name!r} ({node.kind}) is not supported")
    return value.numpy()
