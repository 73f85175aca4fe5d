"""Frames as a network's input: shape and type normalisation, with a clear error for what does not fit."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from spikestream import ir
from spikestream.engine._sparse_kernels import finite_values
from spikestream.errors import InputError

# Luma weights (ITU-R BT.601) for colour frames fed to a single-channel model.
_LUMA = torch.tensor([0.299, 0.587, 0.114])

class FrameShapeError(InputError):
    """A frame that does not fit the model's input."""


def as_frame(frame, input_shape: ir.Shape) -> Tensor:
    """Normalise one frame to float32 ``input_shape`` = (C, H, W) in [0, 1].

    Accepts numpy or torch; (C, H, W), (H, W, C), or (H, W) when C == 1; colour (H, W, 3) frames
    are turned to luma for a single-channel model; uint8 is scaled by 1/255, uint16 by 1/65535,
    floats are taken as they are.
    """
    x = frame if isinstance(frame, Tensor) else torch.from_numpy(np.asarray(frame))
    original_shape = tuple(x.shape)
    if x.dtype == torch.uint8:
        x = x.to(torch.float32) / 255.0
    elif x.dtype == torch.uint16 or (x.dtype == torch.int32 and not isinstance(frame, Tensor)
                                     and np.asarray(frame).dtype == np.uint16):
        x = x.to(torch.float32) / 65535.0
    elif x.dtype == torch.bool or not x.is_floating_point():
        x = x.to(torch.float32)
    else:
        x = x.to(torch.float32)
    shape = tuple(input_shape)
    if len(shape) == 3:
        channels, height, width = shape
        if tuple(x.shape) == shape:
            pass
        elif tuple(x.shape) == (height, width, channels):
            x = x.permute(2, 0, 1)
        elif channels == 1 and tuple(x.shape) == (height, width):
            x = x[None]
        elif channels == 1 and tuple(x.shape) == (height, width, 3):
            x = (x @ _LUMA)[None]
        else:
            accepted = f"{shape}, {(height, width, channels)}" + (f" or {(height, width)}" if channels == 1 else "")
            raise FrameShapeError(f"frame of shape {original_shape} does not fit the model input {shape}; "
                                  f"expected {accepted} (resize the video to {width}x{height})")
    elif tuple(x.shape) != shape:
        raise FrameShapeError(f"frame of shape {original_shape} does not fit the model input {shape}")
    x = x.contiguous()
    if not _all_finite(x):
        raise FrameShapeError("frame contains NaN or infinite values")
    return x


def _all_finite(x: Tensor) -> bool:
    """Whether every value is finite. On the CPU one single-threaded pass (a frame comes from memory,
    so a second pass costs as much again; torch's threaded reductions stall when another process
    holds a core)."""
    if x.device.type == "cpu":
        return finite_values(x.detach().numpy().reshape(-1))
    return bool(torch.isfinite(torch.stack(torch.aminmax(x))).all())
