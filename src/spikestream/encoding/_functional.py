"""Pure encoding functions: a frame in [0, 1] to a (T, ...) stack of network inputs, and back.

These are the single definition of each code; the encoder classes in ``_encoders`` only add
defaults, state and the readout. Every function works element-wise on any shape.

Rounding rule: wherever a code rounds, it rounds half up, ``⌊v + ½⌋``, the same rule as the
requantization step of the fixed-point path (``neurons.requantize``), so the integer reference,
the RTL and these encoders agree on every pixel (torch's default, round half to even, would not).
"""

from __future__ import annotations

import torch
from torch import Tensor

MAX_RADIX_BITS = 24  # float32 holds every integer up to 2^24 exactly, so the float readout stays exact


def round_half_up(value: Tensor) -> Tensor:
    """⌊v + ½⌋: 0.5 → 1, 1.5 → 2, 2.5 → 3 (not half to even)."""
    return torch.floor(value + 0.5)


def _check_bits(bits: int) -> int:
    if isinstance(bits, bool) or int(bits) != bits or not 1 <= bits <= MAX_RADIX_BITS:
        raise ValueError(f"radix bits must be an integer from 1 to {MAX_RADIX_BITS}, not {bits!r}")
    return int(bits)


# --- radix (E3NE) --------------------------------------------------------------------------------


def radix_quantize(x: Tensor, bits: int) -> Tensor:
    """q = clip(⌊x·(2^T − 1) + ½⌋, 0, 2^T − 1) as int64, for x in [0, 1] and T = ``bits``."""
    bits = _check_bits(bits)
    levels = 2**bits - 1
    return torch.clamp(round_half_up(x.to(torch.float64) * levels), 0, levels).to(torch.int64)


def radix_bit_planes(q: Tensor, bits: int) -> Tensor:
    """The bits of the integers ``q`` in [0, 2^T − 1], most significant first: (T, *q.shape) float32.

    planes[t] = ⌊q / 2^(T−1−t)⌋ mod 2, so Σ_t 2^(T−1−t)·planes[t] = q.
    """
    bits = _check_bits(bits)
    q = q.to(torch.int64)
    if q.numel() and (int(q.min()) < 0 or int(q.max()) > 2**bits - 1):
        raise ValueError(f"radix_bit_planes needs integers in [0, {2**bits - 1}] for {bits} bits, "
                         f"got values in [{int(q.min())}, {int(q.max())}]")
    return _bit_planes(q, bits)


def _bit_planes(q: Tensor, bits: int) -> Tensor:
    shifts = torch.arange(bits - 1, -1, -1, device=q.device).view(bits, *([1] * q.dim()))  # MSB first
    return ((q.unsqueeze(0) >> shifts) & 1).to(torch.float32)  # (T, *q.shape)


def radix_encode(x: Tensor, bits: int) -> Tensor:
    """Radix spike train of x in [0, 1]: the bits of ``radix_quantize(x, bits)``, MSB first, (T, *x.shape)."""
    return _bit_planes(radix_quantize(x, bits), bits)  # in range by construction: no check, no device sync


def radix_decode(planes: Tensor) -> Tensor:
    """Inverse of ``radix_bit_planes``: q = Σ_t 2^(T−1−t)·planes[t] as int64 (exact), planes (T, ...)."""
    bits = planes.shape[0]
    _check_bits(bits)
    weights = 2 ** torch.arange(bits - 1, -1, -1, device=planes.device, dtype=torch.int64)  # (T,)
    return torch.tensordot(weights, planes.to(torch.int64), dims=1)  # (T,) · (T, ...) -> (...)


# --- rate ---------------------------------------------------------------------------------------


def rate_encode(x: Tensor, steps: int, generator: torch.Generator | None = None) -> Tensor:
    """Bernoulli spikes: s[t] = 1 with probability x, independently per step and element, (T, *x.shape).

    Uniform draws come from ``generator`` on its own device (CPU unless it says otherwise) and then
    move to x's device, so a seed gives the same spikes on every device.
    """
    device = generator.device if generator is not None else torch.device("cpu")
    uniform = torch.rand((steps, *x.shape), generator=generator, device=device)  # (T, *x.shape)
    return (uniform.to(x.device) < x.unsqueeze(0)).to(x.dtype)


# --- latency (time to first spike) ------------------------------------------------------------------


def latency_spike_times(x: Tensor, steps: int) -> Tensor:
    """t = ⌊(1 − x)·(T − 1) + ½⌋ as int64: x = 1 fires at step 0, x → 0⁺ at step T − 1.

    Elements with x ≤ 0 never fire; their entry is −1.
    """
    times = round_half_up((1 - torch.clamp(x.to(torch.float64), 0, 1)) * (steps - 1)).to(torch.int64)
    return torch.where(x > 0, times, torch.full_like(times, -1))


def latency_encode(x: Tensor, steps: int) -> Tensor:
    """One spike per element with x > 0, at ``latency_spike_times``; (T, *x.shape), brighter is earlier."""
    times = latency_spike_times(x, steps)
    step_index = torch.arange(steps, device=x.device).view(steps, *([1] * x.dim()))  # (T, 1, ...)
    return (step_index == times.unsqueeze(0)).to(x.dtype)  # x ≤ 0 has time −1 and matches no step
