"""Masking as a Stream sees it: which pixels of each frame may send their delta events.

``RegionMasking`` is the callable handed to ``Stream(mask=...)``: frame 0 of a clip (and every
``refresh_every``-th frame) passes whole, so that the receivers start from the real frame rather than
from black; every other frame passes the regions its source selects. A held pixel sends nothing and
keeps its residual in the input SigmaDelta node (``engine._stateful``): when it passes again, the whole
change since it last sent goes out once.

Mask kinds live in one registry, ``MASK_KINDS``: none, static, dynamic (MGNet), previous (the
previous frame's detections) and union (static ∪ MGNet).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from spikestream.masking._regions import MaskError, RegionGrid, check_keep
from spikestream.masking._sources import (
    MGNetMask,
    PreviousDetectionsMask,
    RegionSource,
    StaticMask,
    UnionMask,
)


@dataclass(frozen=True)
class MaskConfig:
    """A region mask: its kind, the share of regions it keeps, the region size and the refresh."""

    kind: str = "union"  # a key of MASK_KINDS
    keep: float = 0.4  # share of regions that pass, in (0, 1]: 0.4 masks 60 %
    region: int = 8  # region side r, pixels
    refresh_every: int | None = None  # the whole frame passes every N frames (None: only at frame 0 of a clip)
    static_share: float = 0.25  # union: share of the budget taken by the static mask's top regions
    previous_share: float = 0.25  # union: then by the previous detections' top regions (MGNet fills the rest)
    hold: int = 1  # MGNet: a region stays kept this many frames after MGNet last chose it

    def __post_init__(self):
        if self.kind not in MASK_KINDS:
            raise MaskError(f"unknown mask {self.kind!r}; choose one of: {', '.join(MASK_KINDS)}")
        object.__setattr__(self, "keep", check_keep(self.keep))
        if isinstance(self.region, bool) or int(self.region) != self.region or self.region < 1:
            raise MaskError(f"mask region size must be a positive whole number of pixels, not {self.region!r}")
        if self.refresh_every is not None and (int(self.refresh_every) != self.refresh_every
                                               or self.refresh_every < 1):
            raise MaskError(f"mask refresh interval must be a positive whole number of frames, "
                            f"not {self.refresh_every!r}")

    @property
    def masked(self) -> float:
        """The nominal masked share of regions, 1 − keep."""
        return 1.0 - self.keep


@dataclass(frozen=True)
class MaskContext:
    """What a mask kind may need to build its source."""

    grid: RegionGrid
    decode: Callable[[np.ndarray], object] | None = None  # network output -> FrameBoxes (detection models)
    mgnet: torch.nn.Module | None = None  # MGNet weights to use (None: the shipped ones)
    heatmap: np.ndarray | None = None  # static heatmap (H, W) to use (None: det-synth's training boxes)


MASK_KINDS: dict[str, Callable[[MaskConfig, MaskContext], RegionSource | None]] = {}


def mask_kind(name: str):
    """Decorator registering a builder ``(config, context) -> source`` (None: no masking) under ``name``."""

    def register(builder):
        if name in MASK_KINDS:
            raise ValueError(f"mask kind {name!r} is registered twice")
        MASK_KINDS[name] = builder
        return builder

    return register


@mask_kind("none")
def _none(config: MaskConfig, context: MaskContext) -> None:
    return None


@mask_kind("static")
def _static(config: MaskConfig, context: MaskContext) -> RegionSource:
    return StaticMask(context.grid, context.heatmap)


@mask_kind("dynamic")
def _dynamic(config: MaskConfig, context: MaskContext) -> RegionSource:
    return MGNetMask(context.grid, context.mgnet, config.hold)


@mask_kind("previous")
def _previous(config: MaskConfig, context: MaskContext) -> RegionSource:
    if context.decode is None:
        raise MaskError("the previous-detections mask needs a detection model (e.g. det-synth) whose output "
                        "decodes to boxes; use --mask static, dynamic or union for this model")
    return PreviousDetectionsMask(context.grid, context.decode)


@mask_kind("union")
def _union(config: MaskConfig, context: MaskContext) -> RegionSource:
    """static ∪ previous detections ∪ MGNet (static ∪ MGNet for a model without boxes)."""
    parts = [(StaticMask(context.grid, context.heatmap), config.static_share)]
    if context.decode is not None:
        parts.append((PreviousDetectionsMask(context.grid, context.decode), config.previous_share))
    return UnionMask([*parts, (MGNetMask(context.grid, context.mgnet, config.hold), 1.0)])


class RegionMasking:
    """The ``Stream`` mask callable: (frame_index, frame (C, H, W)) -> bool (H, W), True = send.

    It records every frame's region mask (``history``) for the masked fraction and the report's overlay.
    """

    def __init__(self, source: RegionSource, config: MaskConfig):
        self.source, self.config, self.grid = source, config, source.grid
        self.count = self.grid.kept_regions(config.keep)
        self.history: list[np.ndarray] = []  # bool (rows, columns) per frame, over every clip
        self._weights = self.grid.region_pixels() / (self.grid.height * self.grid.width)  # pixel share per region

    def __call__(self, frame_index: int, frame: Tensor) -> np.ndarray:
        refresh = frame_index == 0 or (self.config.refresh_every is not None
                                       and frame_index % self.config.refresh_every == 0)
        scored = self.source.select(frame_index, frame, self.count)  # MGNet runs on every frame: it keeps state
        regions = np.ones(self.grid.shape, bool) if refresh else scored
        self.history.append(regions)
        return self.grid.to_pixels(regions)

    def observe(self, output: np.ndarray) -> None:
        self.source.observe(output)

    def reset(self) -> None:
        """A new clip starts (the stream is reset too): its frame 0 passes whole."""
        self.source.reset()

    @property
    def trace(self):
        """The mask generator's own Trace (MGNet), or None when the mask costs no network operations;
        it carries its layer geometry, so the hardware models can price it."""
        trace = self.source.trace
        if trace is not None and trace.frames:
            from spikestream.hw import attach_geometry

            attach_geometry(trace, self.source.graph)
        return trace

    @property
    def masked_fraction(self) -> float:
        """Share of regions held, over every frame seen (frames sent whole count as 0)."""
        return 1.0 - float(np.mean(self.history)) if self.history else 0.0

    @property
    def masked_pixel_fraction(self) -> float:
        """Share of pixels held, over every frame seen (differs from the region share for ragged grids)."""
        if not self.history:
            return 0.0
        return 1.0 - float(np.mean([(regions * self._weights).sum() for regions in self.history]))

    def summary(self) -> dict:
        """The ``masking`` section of report.json."""
        summary = {"kind": self.config.kind, "source": self.source.name, "keep": self.config.keep,
                   "region": self.config.region, "grid": list(self.grid.shape),
                   "kept_regions_per_masked_frame": self.count, "refresh_every": self.config.refresh_every,
                   "masked_fraction": self.masked_fraction, "masked_pixel_fraction": self.masked_pixel_fraction,
                   "frames": len(self.history)}
        if self.config.kind == "union":
            summary["static_share"] = self.config.static_share
            summary["previous_share"] = self.config.previous_share
        if self.trace is not None:
            summary["mask_generator"] = mask_generator_cost(self.trace)
        return summary


def mask_generator_cost(trace) -> dict:
    """MGNet's operations per frame from its Trace: input events, synops and dense MACs."""
    totals = trace.totals()
    frames = max(trace.frames, 1)
    return {"model": "mgnet", "frames": trace.frames, "events_per_frame": totals["events"] / frames,
            "synops_per_frame": totals["synops"] / frames, "dense_macs_per_frame": totals["dense_macs"] / frames}


def make_masking(config: MaskConfig, frame_shape: tuple[int, int], decode: Callable[[np.ndarray], object] | None = None,
                 mgnet: torch.nn.Module | None = None, heatmap: np.ndarray | None = None) -> RegionMasking | None:
    """The mask callable for frames of ``frame_shape`` = (H, W), or None for ``kind="none"``."""
    height, width = frame_shape
    source = MASK_KINDS[config.kind](config, MaskContext(RegionGrid(height, width, config.region), decode, mgnet,
                                                         heatmap))
    return None if source is None else RegionMasking(source, config)
