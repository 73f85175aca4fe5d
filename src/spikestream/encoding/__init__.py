"""Frames to network inputs: direct, rate, radix, latency, frame-delta and sigma-delta encodings."""

from spikestream.encoding._encoders import (
    ENCODINGS,
    Direct,
    Encoding,
    FrameDelta,
    Latency,
    Radix,
    Rate,
    RateState,
    SigmaDelta,
    make_encoding,
    register_encoding,
)
from spikestream.encoding._functional import (
    MAX_RADIX_BITS,
    latency_encode,
    latency_spike_times,
    radix_bit_planes,
    radix_decode,
    radix_encode,
    radix_quantize,
    rate_encode,
    round_half_up,
)

__all__ = [
    "ENCODINGS",
    "MAX_RADIX_BITS",
    "Direct",
    "Encoding",
    "FrameDelta",
    "Latency",
    "Radix",
    "Rate",
    "RateState",
    "SigmaDelta",
    "latency_encode",
    "latency_spike_times",
    "make_encoding",
    "radix_bit_planes",
    "radix_decode",
    "radix_encode",
    "radix_quantize",
    "rate_encode",
    "register_encoding",
    "round_half_up",
]
