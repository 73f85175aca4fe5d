"""Batch-norm folding: an eval-mode batch norm after a weighted layer becomes part of that layer.

In eval mode a batch norm is the per-channel affine map y = γ·(x − μ)/√(σ² + ε) + β. Applied to
the output of a layer y = W x + b it folds into new weights and bias, per output channel o:

    s[o]  = γ[o] / √(σ²[o] + ε)
    W'[o] = W[o] · s[o]
    b'[o] = (b[o] − μ[o]) · s[o] + β[o]        (b = 0 when the layer has no bias)

Batch norm is not an IR node, so folding happens while importing, on the layer just built.
"""

from __future__ import annotations

import numpy as np

from spikestream.ir import Conv2d, ConvTranspose2d, Linear, SynapticNode


def batchnorm_scale(mean, var, gamma, beta, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel ``(scale, shift)`` with BN(x) = scale·x + shift, in float64."""
    scale = np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)
    shift = np.asarray(beta, np.float64) - np.asarray(mean, np.float64) * scale
    return scale, shift


def _output_channel_scale(node: SynapticNode, scale: np.ndarray) -> np.ndarray:
    """``scale`` laid out so that it multiplies the weight array along its output channels."""
    weight = node.weight
    if isinstance(node, (Conv2d, Linear)):  # weight (C_out, ...)
        return scale.reshape(-1, *([1] * (weight.ndim - 1)))
    # ConvTranspose2d weight (C_in, C_out / groups, k_h, k_w): input channel i of group g feeds
    # output channels g·(C_out/groups) + j, j < C_out/groups.
    in_channels, out_per_group = weight.shape[:2]
    group_of_input = np.arange(in_channels) // (in_channels // node.groups)
    output_channel = group_of_input[:, None] * out_per_group + np.arange(out_per_group)[None, :]
    return scale[output_channel][:, :, None, None]


def fold_batchnorm(node: SynapticNode, mean, var, gamma, beta, eps: float) -> SynapticNode:
    """Return ``node`` with an eval-mode batch norm on its output folded into weight and bias."""
    if not isinstance(node, (Conv2d, ConvTranspose2d, Linear)):
        raise TypeError(f"batch norm folds into Conv2d, ConvTranspose2d or Linear, not {node.kind}")
    scale, shift = batchnorm_scale(mean, var, gamma, beta, eps)
    weight = node.weight.astype(np.float64) * _output_channel_scale(node, scale)
    bias = shift if node.bias is None else node.bias.astype(np.float64) * scale + shift
    return node.replace(weight=weight.astype(np.float32), bias=bias.astype(np.float32))
