"""spikestream: spiking neural networks on video, from a PyTorch model to event-driven execution."""

__version__ = "0.1.0"

__all__ = ["__version__"]
