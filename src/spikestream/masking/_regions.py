"""Regions of a frame: the r x r pixel blocks a mask keeps or holds, and the keep-fraction rule.

A frame of H x W pixels is cut into ⌈H/r⌉ x ⌈W/r⌉ regions; where r does not divide the frame the
last row and column of regions are partial (smaller). A region mask (rows, columns) of bool becomes a
pixel mask (H, W) by repeating every region over its pixels. ``keep`` is the share of regions that
pass: a mask keeps the k = ⌊keep·n + ½⌋ (at least 1) highest-scoring of the n regions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikestream.errors import InputError


class MaskError(InputError):
    """A bad masking option: keep fraction, region size, mask kind, or a model a mask cannot serve."""


def check_keep(keep: float) -> float:
    """The keep fraction as a float; anything outside (0, 1] (NaN included) is rejected."""
    try:
        value = float(keep)
    except (TypeError, ValueError):
        raise MaskError(f"keep fraction must be a number in (0, 1] (the share of regions that pass), "
                        f"not {keep!r}") from None
    if not 0.0 < value <= 1.0:  # False for NaN too
        raise MaskError(f"keep fraction must be in (0, 1] (the share of regions that pass), not {keep!r}; "
                        f"e.g. --keep 0.4 keeps 40% of the regions and masks 60%")
    return value


@dataclass(frozen=True)
class RegionGrid:
    """r x r pixel regions tiling an H x W frame; the last row/column of regions may be partial."""

    height: int  # frame height, pixels
    width: int  # frame width, pixels
    size: int  # region side r, pixels

    def __post_init__(self):
        for name in ("height", "width", "size"):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise MaskError(f"region grid {name} must be a positive integer, not {value!r}")
        if self.size > max(self.height, self.width):
            raise MaskError(f"region size {self.size} px is larger than the {self.width}x{self.height} frame; "
                            f"choose a size of at most {max(self.height, self.width)}")

    @property
    def rows(self) -> int:
        return math.ceil(self.height / self.size)

    @property
    def columns(self) -> int:
        return math.ceil(self.width / self.size)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.columns

    @property
    def count(self) -> int:
        return self.rows * self.columns

    def region_pixels(self) -> np.ndarray:
        """int64 (rows, columns): pixels in every region (r² inside, fewer at the ragged edges)."""
        heights = np.minimum(self.size, self.height - self.size * np.arange(self.rows))
        widths = np.minimum(self.size, self.width - self.size * np.arange(self.columns))
        return heights[:, None] * widths[None, :]

    def to_pixels(self, regions: np.ndarray) -> np.ndarray:
        """(rows, columns) region values -> (H, W): every pixel takes its region's value."""
        regions = np.asarray(regions)
        if regions.shape != self.shape:
            raise MaskError(f"region mask of shape {regions.shape} does not fit a grid of {self.shape} regions "
                            f"({self.size} px regions over {self.width}x{self.height})")
        row_of = np.arange(self.height) // self.size  # (H,) region row of each pixel row
        column_of = np.arange(self.width) // self.size  # (W,)
        return regions[row_of][:, column_of]

    def pool(self, pixels: np.ndarray, reduce: str = "sum") -> np.ndarray:
        """(H, W) pixel values -> (rows, columns), each region's ``sum`` or ``max`` over its pixels."""
        pixels = np.asarray(pixels, dtype=np.float64)
        if pixels.shape != (self.height, self.width):
            raise MaskError(f"pixel map of shape {pixels.shape} does not fit the {self.height}x{self.width} frame")
        ufunc = {"sum": np.add, "max": np.maximum}[reduce]
        starts_rows = np.arange(0, self.height, self.size)
        starts_columns = np.arange(0, self.width, self.size)
        return ufunc.reduceat(ufunc.reduceat(pixels, starts_rows, axis=0), starts_columns, axis=1)

    def kept_regions(self, keep: float) -> int:
        """k = ⌊keep·n + ½⌋ regions pass, at least one."""
        return max(1, min(self.count, math.floor(check_keep(keep) * self.count + 0.5)))

    def top(self, scores: np.ndarray, count: int) -> np.ndarray:
        """bool (rows, columns): the ``count`` highest-scoring regions (ties: lower region index first)."""
        scores = np.asarray(scores, dtype=np.float64)
        if scores.shape != self.shape:
            raise MaskError(f"region scores of shape {scores.shape} do not fit a grid of {self.shape} regions")
        order = np.argsort(-scores.ravel(), kind="stable")
        chosen = np.zeros(self.count, dtype=bool)
        chosen[order[:count]] = True
        return chosen.reshape(self.shape)
