"""Errors raised by the IR. A user-facing error names the construct, what was expected and what arrived."""

from spikestream.errors import InputError


class IRError(InputError):
    """An invalid node, graph or shape."""


class UnsupportedError(IRError):
    """A construct spikestream cannot represent; the message lists what is supported."""
