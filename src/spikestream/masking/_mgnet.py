"""MGNet: a small mask-generator network that scores where objects are in the current frame.

It looks at every pixel once (a 1x1 convolution), max-pools to 4x4-pixel cells and gives one logit per
cell; it is trained with binary cross-entropy on "this cell intersects a ground-truth box" over
det-synth's training clips. A region of r x r pixels scores the highest probability of the cells it
overlaps (``MGNetMask``), so one network serves every region size.

    spikestream train mgnet            # reproduces src/spikestream/models/weights/mgnet.safetensors

Its cost is counted wherever masking is priced: ``MGNetMask`` runs it as a graph through a Stream, so
its synops come from the same Trace counting as the detector's (at most 62 k per 64x64 frame, against
about 2 M for det-synth as a sigma-delta network).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikestream._progress import status
from spikestream.models._weights import save_weights
from spikestream.models._zoo import ZooModel, get_model, register_model
from spikestream.models.train import TrainConfig, fit

CELL = 4  # pixels per cell side: MGNet scores an (H/4) x (W/4) grid of cells
FRAME_SIZE = 64  # det-synth's frames, which MGNet is trained on


class MGNet(nn.Module):
    """Per pixel a 1x1 conv 1→4 + ReLU (how far it lies outside the background's brightness band, learned),
    4x4 max pool to cells, 3x3 conv 4→4 + ReLU, 3x3 conv 4→1: one object logit per 4x4-pixel cell.

    Synops per 64x64 frame (dense): 64·64·4 + 16·16·4·4·9 + 16·16·1·4·9 = 62,464.

    The pixel layer starts as brightness-threshold units, SLOPE·(x − t) for bright and SLOPE·(t − x) for
    dark, t in PIXEL_THRESHOLDS: from a default (small, random) start, BCE training settles where the units
    are too shallow to separate objects from the textured background (held-out object pixels inside the
    top 40 % of 8 px regions: 68 %, against 100 % from this start).
    """

    SLOPE = 8.0  # initial gain of a threshold unit, 1/(full scale)
    PIXEL_THRESHOLDS = ((+1, 0.68), (-1, 0.22), (+1, 0.75), (-1, 0.15))  # (sign, threshold): bright, dark, ...

    def __init__(self, width: int = 4):
        super().__init__()
        self.pixels = nn.Conv2d(1, width, 1)
        with torch.no_grad():
            for unit, (sign, threshold) in zip(range(width), self.PIXEL_THRESHOLDS * width, strict=False):
                self.pixels.weight[unit] = sign * self.SLOPE
                self.pixels.bias[unit] = -sign * self.SLOPE * threshold
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d(CELL)
        self.context = nn.Conv2d(width, width, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.score = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        cells = self.pool(self.relu1(self.pixels(x)))  # (B, 1, H, W) -> (B, 4, H/4, W/4)
        return self.score(self.relu2(self.context(cells)))  # (B, 1, H/4, W/4) logits


def cell_targets(boxes: np.ndarray, height: int = FRAME_SIZE, width: int = FRAME_SIZE, cell: int = CELL
                 ) -> np.ndarray:
    """float32 (H/cell, W/cell): 1 where the cell intersects one of the boxes (x0, y0, x1, y1, pixel edges)."""
    rows, columns = height // cell, width // cell
    target = np.zeros((rows, columns), np.float32)
    for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        left, top = int(np.floor(max(x0, 0))), int(np.floor(max(y0, 0)))
        right, bottom = int(np.ceil(min(x1, width))), int(np.ceil(min(y1, height)))  # exclusive pixel edges
        if right <= left or bottom <= top:
            continue
        target[top // cell:min(rows, (bottom - 1) // cell + 1), left // cell:min(columns, (right - 1) // cell + 1)] = 1
    return target


def _tensors(clips) -> tuple[Tensor, Tensor]:
    frames = torch.from_numpy(np.concatenate([c.frames for c in clips])).float().div_(255)[:, None]  # (N, 1, H, W)
    targets = torch.from_numpy(np.stack([cell_targets(b) for c in clips for b in c.boxes]))[:, None]  # (N, 1, h, w)
    return frames, targets


def region_recall(module: nn.Module, clips, region: int = 8, keep: float = 0.4) -> dict:
    """Over the clips' frames: the share of regions holding (part of) a box that MGNet's top-``keep``
    regions include, and the share of regions holding a box at all."""
    from spikestream.masking._regions import RegionGrid

    grid = RegionGrid(FRAME_SIZE, FRAME_SIZE, region)
    count = grid.kept_regions(keep)
    frames, targets = _tensors(clips)
    with torch.no_grad():
        probabilities = torch.sigmoid(module.eval()(frames))[:, 0].numpy()  # (N, h, w)
    found = positives = 0
    for cells, truth in zip(probabilities, targets[:, 0].numpy(), strict=True):
        pixels = np.repeat(np.repeat(cells, CELL, 0), CELL, 1)
        kept = grid.top(grid.pool(pixels, "max"), count)
        wanted = grid.pool(np.repeat(np.repeat(truth, CELL, 0), CELL, 1), "max") > 0
        found += int((kept & wanted).sum())
        positives += int(wanted.sum())
    return {"region": region, "keep": keep, "recall": found / max(positives, 1),
            "regions_with_objects": positives / (len(frames) * grid.count)}


@dataclass(frozen=True)
class MGNetRecipe:
    """How MGNet is trained (the defaults reproduce the shipped weights, about a minute on 2 CPU cores)."""

    clips: int = 300  # det-synth training clips (seeds 0..299)
    frames: int = 6  # frames per clip
    epochs: int = 10
    batch_size: int = 32
    lr: float = 3e-3
    heldout_clips: int = 8  # held-out clips of heldout_frames frames for the returned region recall
    heldout_frames: int = 20


MGNET_RECIPE = MGNetRecipe()


def train_mgnet(out_path, seed: int = 0, texture: str = "auto", recipe: MGNetRecipe = MGNET_RECIPE) -> dict:
    """Train MGNet on det-synth's training clips (its textures) and write its safetensors to ``out_path``."""
    from spikestream.models.synthetic_tasks import task_clips, texture_source, trained_texture

    start = time.perf_counter()
    if texture == "auto":
        texture = trained_texture(get_model("det-synth"))  # look like the detector's training frames
    _, texture = texture_source(texture, "train")
    status(f"mgnet: {recipe.clips} training clips of {recipe.frames} frames, {texture} textures")
    frames, targets = _tensors(task_clips("train", recipe.clips, recipe.frames, texture))
    torch.manual_seed(seed)
    model = MGNet()
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only adds barriers (10x slower on a loaded machine)
    try:
        history = fit(model, frames, targets, lambda m, x, y: F.binary_cross_entropy_with_logits(m(x), y), config,
                      "mgnet")
    finally:
        torch.set_num_threads(threads)
    save_weights(model.eval(), Path(out_path), {"model": "mgnet", "seed": seed, "texture": texture,
                                                "recipe": repr(recipe)})
    heldout = task_clips("heldout", recipe.heldout_clips, recipe.heldout_frames, texture)
    return {"texture": texture, "train_s": time.perf_counter() - start, "loss": history,
            "heldout_region_recall": [region_recall(model, heldout, 8, keep) for keep in (0.2, 0.4, 0.6)]}


MGNET = register_model(ZooModel(
    name="mgnet",
    description="mask generator: one object logit per 4x4-pixel cell of a 64x64 frame (region masking, det-synth)",
    task="region-mask",
    input_shape=(1, FRAME_SIZE, FRAME_SIZE),
    architecture=MGNet,
    weights="mgnet.safetensors",
    train=train_mgnet,
))


def load_mgnet() -> MGNet:
    """MGNet with its shipped weights, in eval mode."""
    return MGNET.build()
