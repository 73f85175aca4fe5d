"""Model weights: safetensors files only (never pickle), shipped in ``models/weights/``."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from spikestream._atomic import atomic_path
from spikestream.errors import InputError

WEIGHTS_DIR = Path(__file__).parent / "weights"


class WeightsError(InputError):
    """A weights file that is missing, corrupt, or does not fit the architecture."""


def save_weights(module: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write the module's state dict as safetensors, atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()}
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata={k: str(v) for k, v in (metadata or {}).items()})
        os.chmod(temporary, 0o644)  # safetensors creates 0600; shipped weights must be readable by every user
    return path


def load_weights(module: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load safetensors weights into ``module`` (strict: every tensor present, every shape equal)."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"cannot load weights {str(path)!r}: no such file")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(f"cannot load weights {str(path)!r}: not a valid safetensors file ({error})") from None
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"cannot load weights {str(path)!r}: missing {missing[:3]}, unexpected {unexpected[:3]}")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise WeightsError(f"cannot load weights {str(path)!r}: {name} has shape {tuple(tensor.shape)}, "
                               f"the model expects {tuple(expected[name].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise WeightsError(f"cannot load weights {str(path)!r}: {name} holds NaN or infinite values")
    module.load_state_dict(tensors)
    return module
