"""Where objects are likely: region scores from a training-set heatmap, from MGNet, or from the previous
frame's detections, and the union of a static and a dynamic mask.

Every source answers ``select(frame_index, frame, count) -> bool (rows, columns)``: the regions that pass
this frame, ``count`` of them. ``observe(output)`` shows it the network's output of the frame just run
(the previous-detections mask needs it), ``reset()`` starts a new clip.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np
import torch
from torch import Tensor

from spikestream.masking._regions import MaskError, RegionGrid

# --- the static mask: a heatmap of training-set boxes --------------------------------------------------


def box_heatmap(boxes_per_frame: Iterable[np.ndarray], height: int, width: int) -> np.ndarray:
    """float64 (H, W): how many boxes cover each pixel, summed over all frames, normalised to sum 1.

    A box (x0, y0, x1, y1) in pixel edges covers columns ⌊x0⌋..⌈x1⌉−1 and rows ⌊y0⌋..⌈y1⌉−1.
    """
    counts = np.zeros((height + 1, width + 1), np.float64)  # a 2-D difference array, integrated below
    for boxes in boxes_per_frame:
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            left, top = int(np.clip(np.floor(x0), 0, width)), int(np.clip(np.floor(y0), 0, height))
            right, bottom = int(np.clip(np.ceil(x1), 0, width)), int(np.clip(np.ceil(y1), 0, height))
            if right <= left or bottom <= top:
                continue
            counts[top, left] += 1
            counts[top, right] -= 1
            counts[bottom, left] -= 1
            counts[bottom, right] += 1
    heat = counts.cumsum(0).cumsum(1)[:height, :width]
    total = heat.sum()
    if total <= 0:
        raise MaskError("the static mask needs training frames with at least one box; none were given")
    return heat / total


TRAINING_CLIPS = 100  # training clips (seeds 0..99, as det-synth's training set) behind the static heatmap
TRAINING_FRAMES = 12  # frames per clip, as in det-synth's recipe


@functools.lru_cache(maxsize=1)
def _training_boxes_heatmap(clips: int, frames: int) -> np.ndarray:
    from spikestream.models.synthetic_tasks import FRAME_SIZE, task_clips

    training = task_clips("train", clips, frames, "shapes")
    return box_heatmap((b for clip in training for b in clip.boxes), FRAME_SIZE, FRAME_SIZE)


def training_heatmap(height: int = 64, width: int = 64, clips: int = TRAINING_CLIPS,
                     frames: int = TRAINING_FRAMES) -> np.ndarray:
    """The box heatmap of det-synth's training clips, resized to H x W (renormalised to sum 1).

    The clips are rendered with plain shapes: a texture changes what an object looks like, never where
    it is or which of its pixels are visible, so the boxes are those of the textured training set.
    """
    heat = _training_boxes_heatmap(clips, frames)  # (64, 64), computed once per process
    if (height, width) != heat.shape:
        heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_AREA)
    return heat / heat.sum()


class RegionSource(ABC):
    """Base of every mask source: ``select`` the regions that pass this frame."""

    name = "source"
    graph = None  # the mask generator's graph (MGNet), if the source runs a network
    trace = None  # and its Trace

    def __init__(self, grid: RegionGrid):
        self.grid = grid

    @abstractmethod
    def select(self, frame_index: int, frame: Tensor, count: int) -> np.ndarray:
        """(grid rows, grid columns) bool: the ``count`` regions that pass this frame."""

    def observe(self, output: np.ndarray) -> None:  # noqa: B027 - an optional hook, a no-op for most sources
        """The network's output of the frame just run (ignored unless the source needs it)."""

    def reset(self) -> None:  # noqa: B027 - an optional hook, a no-op for stateless sources
        """A new clip starts: forget what was seen."""


class RankedSource(RegionSource):
    """A mask source that ranks every region: the top ``count`` by ``region_scores`` pass."""

    @abstractmethod
    def region_scores(self, frame_index: int, frame: Tensor) -> np.ndarray:
        """(regions,) score of every region for this frame; higher passes first."""

    def select(self, frame_index: int, frame: Tensor, count: int) -> np.ndarray:
        return self.grid.top(self.region_scores(frame_index, frame), count)


class StaticMask(RankedSource):
    """The same regions every frame: those holding most of the training-set heatmap's mass
    (the heatmap summed over each region)."""

    name = "static"

    def __init__(self, grid: RegionGrid, heatmap: np.ndarray | None = None):
        super().__init__(grid)
        heatmap = training_heatmap(grid.height, grid.width) if heatmap is None else np.asarray(heatmap, np.float64)
        self.scores = grid.pool(heatmap, "sum")  # (rows, columns)

    def region_scores(self, frame_index: int, frame: Tensor) -> np.ndarray:
        return self.scores


# --- the dynamic masks -------------------------------------------------------------------------------


class MGNetMask(RankedSource):
    """MGNet's scores of the current frame: a region's score is the highest probability of the MGNet cells
    overlapping it, held for ``hold`` more frames (max over the last hold + 1 frames), so that a region an
    object has just left is refreshed once and keeps no ghost of it.

    MGNet runs as a graph through its own ``Stream`` (direct encoding), so its operations land in
    ``self.trace`` and are priced beside the detector's.
    """

    name = "mgnet"

    def __init__(self, grid: RegionGrid, module: torch.nn.Module | None = None, hold: int = 1):
        from spikestream.engine import Stream
        from spikestream.frontend import from_torch
        from spikestream.masking._mgnet import CELL, load_mgnet

        super().__init__(grid)
        if int(hold) != hold or hold < 0:
            raise MaskError(f"MGNet hold must be a whole number of frames >= 0, not {hold!r}")
        self.hold = int(hold)
        module = load_mgnet() if module is None else module.eval()
        self.graph = from_torch(module, (1, grid.height, grid.width))
        self.stream = Stream(self.graph, "direct", tile=(4, 4))
        self.cell = CELL
        self._history: list[np.ndarray] = []

    @property
    def trace(self):
        return self.stream.trace

    def probabilities(self, frame: Tensor) -> np.ndarray:
        """float (H, W): MGNet's object probability of the cell under every pixel (edge cells repeated
        where the frame is not a whole number of cells)."""
        gray = frame.mean(0, keepdim=True) if frame.shape[0] != 1 else frame  # (1, H, W)
        logits = self.stream.process(gray)[0]  # (H // cell, W // cell)
        cells = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
        pixels = np.repeat(np.repeat(cells, self.cell, 0), self.cell, 1)
        pad = ((0, max(0, self.grid.height - pixels.shape[0])), (0, max(0, self.grid.width - pixels.shape[1])))
        return np.pad(pixels, pad, mode="edge")[:self.grid.height, :self.grid.width]

    def region_scores(self, frame_index: int, frame: Tensor) -> np.ndarray:
        scores = self.grid.pool(self.probabilities(frame), "max")
        self._history = [*self._history[-self.hold:], scores] if self.hold else [scores]
        return np.max(self._history, axis=0)

    def reset(self) -> None:
        self._history = []
        self.stream.reset()


class PreviousDetectionsMask(RankedSource):
    """Regions under the previous frame's detections: each box (score ≥ ``min_score``) paints its score
    onto its pixels, the map is blurred (Gaussian, σ = ``spread`` px, so that regions next to a box rank
    next) and a region scores the highest value over its pixels. Frame 0 of a clip has no detections and
    is sent whole anyway (see ``RegionMasking``)."""

    name = "previous"

    def __init__(self, grid: RegionGrid, decode: Callable[[np.ndarray], object], min_score: float = 0.1,
                 spread: float = 4.0):
        super().__init__(grid)
        self.decode = decode
        self.min_score = float(min_score)
        self.spread = float(spread)
        self._heat = np.zeros((grid.height, grid.width), np.float64)

    def observe(self, output: np.ndarray) -> None:
        found = self.decode(output)  # FrameBoxes
        heat = np.zeros((self.grid.height, self.grid.width), np.float64)
        for (x0, y0, x1, y1), score in zip(found.boxes, found.scores, strict=True):
            if score < self.min_score:
                continue
            left, top = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
            right, bottom = min(self.grid.width, int(np.ceil(x1))), min(self.grid.height, int(np.ceil(y1)))
            heat[top:bottom, left:right] = np.maximum(heat[top:bottom, left:right], score)
        if self.spread > 0:
            heat = np.maximum(heat, cv2.GaussianBlur(heat, (0, 0), self.spread))
        self._heat = heat

    def region_scores(self, frame_index: int, frame: Tensor) -> np.ndarray:
        return self.grid.pool(self._heat, "max")

    def reset(self) -> None:
        self._heat = np.zeros_like(self._heat)


class UnionMask(RegionSource):
    """The union of several masks under one budget of ``count`` regions: in order, each source adds its
    top ⌊share·count + ½⌋ regions not yet kept (its own top regions, so the union holds every source's
    mask), and the last source's ranking fills the budget."""

    name = "union"

    def __init__(self, parts: Sequence[tuple[RankedSource, float]]):
        if not parts:
            raise MaskError("a union mask needs at least one source")
        grid = parts[0][0].grid
        super().__init__(grid)
        for source, share in parts:
            if source.grid != grid:
                raise MaskError("the masks of a union must use the same region grid")
            if not 0.0 <= share <= 1.0:
                raise MaskError(f"a union's share of the budget must be in [0, 1], not {share!r}")
        if sum(share for _, share in parts[:-1]) > 1.0 + 1e-9:
            raise MaskError("the shares of a union's sources (all but the last) must add up to at most 1")
        self.parts = [(source, float(share)) for source, share in parts]
        self.name = "union(" + ", ".join(source.name for source, _ in self.parts) + ")"
        generators = [source for source, _ in self.parts if source.graph is not None]
        self.generator = generators[0] if generators else None

    @property
    def graph(self):
        return None if self.generator is None else self.generator.graph

    @property
    def trace(self):
        return None if self.generator is None else self.generator.trace

    def select(self, frame_index: int, frame: Tensor, count: int) -> np.ndarray:
        kept = np.zeros(self.grid.shape, bool)
        for position, (source, share) in enumerate(self.parts):
            scores = source.region_scores(frame_index, frame).astype(np.float64)  # every source sees every frame
            last = position == len(self.parts) - 1
            if last:  # regions already kept rank first, then this source's order fills the budget
                return self.grid.top(np.where(kept, np.inf, scores), count)
            kept |= self.grid.top(scores, int(np.floor(share * count + 0.5)))
        return kept

    def observe(self, output: np.ndarray) -> None:
        for source, _ in self.parts:
            source.observe(output)

    def reset(self) -> None:
        for source, _ in self.parts:
            source.reset()
