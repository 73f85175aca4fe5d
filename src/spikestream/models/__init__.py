"""Model zoo: architectures and shipped safetensors weights, by name."""

from spikestream.models import (
    fmnist,  # registers fmnist-cnn
    fmnist_insensor,  # registers fmnist-insensor
    seg_motion,  # registers seg-motion
    synthetic_tasks,  # registers seg-synth and det-synth
)
from spikestream.models._weights import WEIGHTS_DIR, WeightsError, load_weights, save_weights
from spikestream.models._zoo import MODELS, TinySegmenter, ZooModel, get_model, register_model

__all__ = [
    "MODELS",
    "WEIGHTS_DIR",
    "TinySegmenter",
    "WeightsError",
    "ZooModel",
    "fmnist",
    "fmnist_insensor",
    "get_model",
    "load_weights",
    "register_model",
    "save_weights",
    "seg_motion",
    "synthetic_tasks",
]

from spikestream.masking import _mgnet  # noqa: F401  registers mgnet (the mask generator of spikestream.masking)
