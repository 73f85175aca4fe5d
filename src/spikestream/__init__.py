"""spikestream: spiking neural networks on video, from a PyTorch model to event-driven execution.

The public face is small and re-exported by hand. Names are resolved lazily (PEP 562) so that
``import spikestream.ir`` stays free of torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Graph": "spikestream.ir",
    "from_torch": "spikestream.frontend",
    "load_nir": "spikestream.frontend",
    "save_nir": "spikestream.frontend",
    "Stream": "spikestream.engine",
    "Trace": "spikestream.engine",
    "KeyframePolicy": "spikestream.engine",
    "simulate": "spikestream.engine",
    "make_encoding": "spikestream.encoding",
    "to_sigma_delta": "spikestream.passes",
    "InputError": "spikestream.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spikestream' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
