"""Model zoo: architectures and shipped weights, by name."""

from spikestream.models._zoo import MODELS, TinySegmenter, ZooModel, register_model

__all__ = ["MODELS", "TinySegmenter", "ZooModel", "register_model"]
