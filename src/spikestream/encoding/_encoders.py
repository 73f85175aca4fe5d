"""Encoders: frozen dataclasses that turn one frame into the network's inputs for that frame.

Every encoder implements the interface the streaming engine relies on:

- ``steps``: T, the time steps the network runs per frame;
- ``reset_each_frame``: whether network state is cleared before each frame (frame-wise codes) or
  carried across frames (delta codes);
- ``init_state(shape)`` → the encoder's own state (None when stateless);
- ``encode(x, state)`` → ((T, *x.shape) inputs, new state), for one frame x in [0, 1];
- ``decode(outputs)``: (T, *out_shape) outputs over the frame's steps → (*out_shape) readout.

``encode`` never mutates the state it is given, so replaying a state replays the same inputs.
All encoders live in one registry, ``ENCODINGS``, filled by ``register_encoding``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from spikestream.encoding._functional import (
    MAX_RADIX_BITS,
    latency_encode,
    radix_encode,
    rate_encode,
)
from spikestream.errors import InputError
from spikestream.neurons import SigmaDeltaParams, SigmaDeltaState, sigma_delta_step

ENCODINGS: dict[str, type[Encoding]] = {}


def register_encoding(cls: type[Encoding]) -> type[Encoding]:
    """Add an encoder class to the registry under its ``name``; the registry is the one list of encodings."""
    if cls.name in ENCODINGS:
        raise ValueError(f"encoding {cls.name!r} is registered twice")
    ENCODINGS[cls.name] = cls
    return cls


def make_encoding(name: str, **options) -> Encoding:
    """Build the encoder registered as ``name`` with its options, e.g. ``make_encoding("radix", steps=6)``."""
    if name not in ENCODINGS:
        raise InputError(f"unknown encoding {name!r}; choose one of: {', '.join(sorted(ENCODINGS))}")
    cls = ENCODINGS[name]
    accepted = [f.name for f in dataclasses.fields(cls) if f.init]
    fixed = {f.name: f.default for f in dataclasses.fields(cls) if not f.init}
    listed = ", ".join(accepted) if accepted else "none"
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        option = unknown[0]
        problem = f"fixes {option}={fixed[option]!r}" if option in fixed else f"has no option {option!r}"
        raise InputError(f"encoding {name!r} {problem}; its options are: {listed}")
    return cls(**options)


def _as_one_step(x: Tensor) -> Tensor:
    """A copy of ``x`` with a leading time axis of one step. On the CPU a plain memory copy: torch's
    copy of a frame-sized tensor forks OpenMP work whose idle workers then spin for a while, on the
    core a pipelined stream's other stage runs on (measured: a pipelined seg-motion stream 4 % slower)."""
    if x.device.type == "cpu" and not x.requires_grad:
        return torch.from_numpy(np.ascontiguousarray(x.numpy())[None].copy())
    return x.unsqueeze(0).clone()


def _single_step(outputs: Tensor, name: str) -> Tensor:
    if outputs.shape[0] != 1:
        raise ValueError(f"encoding {name!r} runs one step per frame, but decode got {outputs.shape[0]} steps")
    return outputs[0]


@dataclass(frozen=True, kw_only=True)
class Encoding(ABC):
    """Base class; see the module docstring for the contract."""

    steps: int  # T, time steps the network runs per frame

    name: ClassVar[str] = "encoding"
    reset_each_frame: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise InputError(f"encoding {self.name!r}: steps must be a positive integer, not {self.steps!r}")

    def init_state(self, shape: tuple[int, ...]) -> object:
        """The encoder's state before the first frame of a stream (None: stateless)."""
        return None

    @abstractmethod
    def encode(self, x: Tensor, state: object) -> tuple[Tensor, object]:
        """x: one frame in [0, 1], any per-sample shape → ((T, *x.shape) network inputs, new state)."""

    def decode(self, outputs: Tensor) -> Tensor:
        """(T, *out_shape) outputs over one frame → (*out_shape): the mean over the steps."""
        return outputs.mean(dim=0)

    def as_dict(self) -> dict:
        """Name and options, for report.json."""
        return {"name": self.name, **dataclasses.asdict(self)}


@register_encoding
@dataclass(frozen=True, kw_only=True)
class Direct(Encoding):
    """The analog frame itself, repeated T times: inputs[t] = x. Readout: mean over T."""

    steps: int = 1

    name: ClassVar[str] = "direct"
    reset_each_frame: ClassVar[bool] = True

    def encode(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        return x.unsqueeze(0).repeat(self.steps, *([1] * x.dim())), None  # a copy: callers may gate it in place


class RateState(NamedTuple):
    generator: torch.Generator  # advanced by T·numel uniform draws per frame


@register_encoding
@dataclass(frozen=True, kw_only=True)
class Rate(Encoding):
    """Bernoulli rate code: inputs[t] = 1 with probability x. Readout: mean over T (the spike rate).

    The generator is seeded with ``seed`` at ``init_state``, so frame k of a stream gets the same
    spikes for the same seed (and the same earlier frame shapes) on every run and device.
    """

    steps: int = 8
    seed: int = 0  # seed of the stream's random generator

    name: ClassVar[str] = "rate"
    reset_each_frame: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"encoding 'rate': seed must be a non-negative integer, not {self.seed!r}")

    def init_state(self, shape: tuple[int, ...]) -> RateState:
        return RateState(torch.Generator().manual_seed(self.seed))

    def encode(self, x: Tensor, state: RateState) -> tuple[Tensor, RateState]:
        generator = torch.Generator(state.generator.device)
        generator.set_state(state.generator.get_state())  # advance a copy: the given state stays valid
        return rate_encode(x, self.steps, generator), RateState(generator)


@register_encoding
@dataclass(frozen=True, kw_only=True)
class Radix(Encoding):
    """E3NE radix code with T = ``steps`` bits: inputs[t] = bit T−1−t of q = clip(⌊x·(2^T−1) + ½⌋, 0, 2^T−1).

    Readout: Σ_t 2^(T−1−t)·o_t / (2^T − 1), which maps the bit planes of q back to q / (2^T − 1).
    """

    steps: int = 4

    name: ClassVar[str] = "radix"
    reset_each_frame: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.steps > MAX_RADIX_BITS:
            raise InputError(f"encoding 'radix': steps (bits) must be at most {MAX_RADIX_BITS}, not {self.steps}")

    def encode(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        return radix_encode(x, self.steps).to(device=x.device, dtype=x.dtype), None

    def decode(self, outputs: Tensor) -> Tensor:
        steps = outputs.shape[0]
        weights = 2.0 ** torch.arange(steps - 1, -1, -1, device=outputs.device, dtype=outputs.dtype)  # MSB first
        return torch.tensordot(weights, outputs, dims=1) / (2**steps - 1)  # (T,) · (T, ...) -> (...)


@register_encoding
@dataclass(frozen=True, kw_only=True)
class Latency(Encoding):
    """Time-to-first-spike: one spike at t = ⌊(1 − x)·(T − 1) + ½⌋ for x > 0; x = 0 never fires.

    Brighter pixels fire earlier (x = 1 at t = 0). Readout: mean over T.
    """

    steps: int = 8

    name: ClassVar[str] = "latency"
    reset_each_frame: ClassVar[bool] = True

    def encode(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        return latency_encode(x, self.steps), None


@register_encoding
@dataclass(frozen=True, kw_only=True)
class FrameDelta(Encoding):
    """Send-on-delta on the raw frame, one step per frame, state kept across frames.

    With x̂ the reconstruction the receiver holds: Δ = x − x̂; y = Δ if |Δ| ≥ θ else 0; x̂ ← x̂ + y
    (``neurons.sigma_delta_step``). The inputs are the signed deltas y, so |x − x̂| < θ after every
    frame and Σ_frames y = x̂. Readout: the single step's output.
    """

    threshold: float = 0.05  # θ, in the units of x (frame range [0, 1])
    steps: int = field(default=1, init=False)

    name: ClassVar[str] = "frame-delta"
    reset_each_frame: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, numbers.Real) or \
                not 0 <= self.threshold < math.inf:
            raise InputError(f"encoding 'frame-delta': threshold must be a finite number >= 0, "
                             f"not {self.threshold!r}")

    def init_state(self, shape: tuple[int, ...]) -> SigmaDeltaState:
        return SigmaDeltaState(torch.zeros(shape))

    def encode(self, x: Tensor, state: SigmaDeltaState) -> tuple[Tensor, SigmaDeltaState]:
        state = SigmaDeltaState(state.reconstruction.to(device=x.device, dtype=x.dtype))  # no-op when already there
        params = SigmaDeltaParams(torch.tensor(float(self.threshold), dtype=x.dtype, device=x.device))
        deltas, state = sigma_delta_step(x, state, params)
        return deltas.unsqueeze(0), state  # (1, *x.shape)

    def decode(self, outputs: Tensor) -> Tensor:
        return _single_step(outputs, self.name)


@register_encoding
@dataclass(frozen=True, kw_only=True)
class SigmaDelta(Encoding):
    """The analog frame, one step per frame, state kept across frames.

    The network's own SigmaDelta nodes turn it into deltas, so nothing is encoded here. Readout:
    the single step's output.
    """

    steps: int = field(default=1, init=False)

    name: ClassVar[str] = "sigma-delta"
    reset_each_frame: ClassVar[bool] = False

    def encode(self, x: Tensor, state: None) -> tuple[Tensor, None]:
        return _as_one_step(x), None  # (1, *x.shape), a copy: callers may gate it in place

    def decode(self, outputs: Tensor) -> Tensor:
        return _single_step(outputs, self.name)
