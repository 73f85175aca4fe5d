"""Dense torch implementations of the IR's stateless node kinds, one registry keyed by node kind.

Every op takes the node and its input tensors with a leading batch dimension, ``(B, *shape)``,
and returns ``(B, *output_shape)``. Stateful kinds (neurons, sigma-delta) live in ``_stateful``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from spikestream import ir, neurons

DenseOp = Callable[[ir.Node, dict[str, Tensor], list[Tensor]], Tensor]
DENSE_OPS: dict[str, DenseOp] = {}


def dense_op(kind: str) -> Callable[[DenseOp], DenseOp]:
    def register(fn: DenseOp) -> DenseOp:
        if kind in DENSE_OPS:
            raise ValueError(f"dense op for {kind!r} is registered twice")
        if kind not in ir.NODE_KINDS:
            raise ValueError(f"dense op for unknown node kind {kind!r}")
        DENSE_OPS[kind] = fn
        return fn
    return register


def node_tensors(node: ir.Node, device: torch.device | str = "cpu") -> dict[str, Tensor]:
    """The node's array fields as float32 tensors (prepared once per graph, not per frame)."""
    return {name: torch.tensor(np.array(getattr(node, name)), device=device)  # copy: IR arrays are read-only
            for name in node.array_fields if getattr(node, name) is not None}


@dense_op("Input")
def _input(node, params, inputs):
    return inputs[0]


@dense_op("Output")
def _output(node, params, inputs):
    return inputs[0]


@dense_op("Conv2d")
def _conv2d(node: ir.Conv2d, params, inputs):
    return F.conv2d(inputs[0], params["weight"], params.get("bias"), node.stride, node.padding,
                    node.dilation, node.groups)


@dense_op("ConvTranspose2d")
def _conv_transpose2d(node: ir.ConvTranspose2d, params, inputs):
    return F.conv_transpose2d(inputs[0], params["weight"], params.get("bias"), node.stride, node.padding,
                              node.output_padding, node.groups, node.dilation)


@dense_op("Linear")
def _linear(node: ir.Linear, params, inputs):
    return F.linear(inputs[0], params["weight"], params.get("bias"))


@dense_op("AvgPool2d")
def _avg_pool(node: ir.AvgPool2d, params, inputs):
    return F.avg_pool2d(inputs[0], node.kernel_size, node.stride, node.padding)


@dense_op("SumPool2d")
def _sum_pool(node: ir.SumPool2d, params, inputs):
    return F.avg_pool2d(inputs[0], node.kernel_size, node.stride, node.padding, divisor_override=1)


@dense_op("MaxPool2d")
def _max_pool(node: ir.MaxPool2d, params, inputs):
    return F.max_pool2d(inputs[0], node.kernel_size, node.stride, node.padding)


@dense_op("Flatten")
def _flatten(node: ir.Flatten, params, inputs):
    x = inputs[0]
    rank = x.dim() - 1  # per-sample rank
    return torch.flatten(x, 1 + node.start_dim % rank, 1 + node.end_dim % rank)


@dense_op("Upsample")
def _upsample(node: ir.Upsample, params, inputs):
    if node.mode == "nearest":
        return F.interpolate(inputs[0], scale_factor=node.scale_factor, mode="nearest")
    return F.interpolate(inputs[0], scale_factor=node.scale_factor, mode="bilinear", align_corners=False)


@dense_op("Add")
def _add(node, params, inputs):
    total = inputs[0]
    for x in inputs[1:]:
        total = total + x
    return total


@dense_op("Concat")
def _concat(node: ir.Concat, params, inputs):
    rank = inputs[0].dim() - 1
    return torch.cat(inputs, dim=1 + node.axis % rank)


@dense_op("ReLU")
def _relu(node, params, inputs):
    return torch.relu(inputs[0])


@dense_op("Requantize")
def _requantize(node: ir.Requantize, params, inputs):
    return neurons.requantize(inputs[0], node.shift, node.bits)  # exact on integer-valued floats
