"""Hardware targets: one registry, one result type, one entry point (``simulate``).

A target consumes a Trace (never the network) and returns per-frame time, throughput, latency,
energy per frame (the target's own memory-inclusive estimate beside the compute-only proxy), EDP and,
for PE arrays, the balance ratio.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from spikestream.errors import InputError


class TargetError(InputError):
    """An unknown target, a bad target option, or a network that does not fit the target."""


@dataclass
class HardwareResult:
    target: str
    schedule: str | None
    frames: int
    frame_time_s: np.ndarray  # (frames,) time to process every frame
    fps: float  # throughput: 1 / mean frame time
    latency_s: float  # mean time from a frame's arrival to its output
    energy_j_per_frame: float  # the target's estimate (memory, static power and I/O included)
    energy_breakdown: dict[str, float]  # J per frame by component; sums to energy_j_per_frame
    compute_only_j_per_frame: float  # the compute-only proxy of the same trace (int8 design point)
    balance_ratio: float | None = None  # mean PE load ÷ max PE load (PE arrays)
    pe_loads: dict[str, np.ndarray] = field(default_factory=dict)  # layer -> (frames, P) busy cycles
    details: dict = field(default_factory=dict)  # target-specific plain data

    @property
    def edp(self) -> float:
        """Energy-delay product per frame, J·s."""
        return self.energy_j_per_frame * self.latency_s

    def hardware_dict(self) -> dict:
        """The ``hardware`` entry of report.json (DESIGN.md §4 keys first, then details)."""
        return {"target": self.target, "schedule": self.schedule, "fps": self.fps, "latency_s": self.latency_s,
                "energy_j_per_frame": self.energy_j_per_frame, "edp": self.edp,
                "balance_ratio": self.balance_ratio, "frames": self.frames,
                "compute_only_j_per_frame": self.compute_only_j_per_frame,
                "energy_breakdown_j_per_frame": self.energy_breakdown, **self.details}


class Target(ABC):
    """Base class: ``simulate(trace, schedule) -> HardwareResult``; options go to the constructor."""

    name = "target"
    uses_schedule = False

    @abstractmethod
    def simulate(self, trace, schedule: str | None = None, **schedule_options) -> HardwareResult:
        """The trace run on this target under ``schedule`` (ignored by targets without a PE array)."""


TARGETS: dict[str, type[Target]] = {}


def register_target(name: str):
    """Class decorator adding a target to ``TARGETS`` under ``name`` (duplicates rejected)."""

    def decorate(cls: type[Target]) -> type[Target]:
        if name in TARGETS:
            raise ValueError(f"target {name!r} is registered twice")
        cls.name = name
        TARGETS[name] = cls
        return cls

    return decorate


def make_target(name: str, **options) -> Target:
    if name not in TARGETS:
        raise TargetError(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
    try:
        return TARGETS[name](**options)
    except TypeError as error:
        raise TargetError(f"target {name!r} does not take these options: {error}") from None


def simulate(trace, target: str = "fpga", schedule: str | None = None, schedule_options: dict | None = None,
             **target_options) -> HardwareResult:
    """Run a Trace on a hardware target: ``simulate(trace, "fpga", "kwbs", device="XC7Z035",
    processing_elements=16)``. Targets without a PE array ignore ``schedule``."""
    if trace.frames == 0:
        raise TargetError("the trace has no frames to simulate")
    return make_target(target, **target_options).simulate(trace, schedule, **(schedule_options or {}))
