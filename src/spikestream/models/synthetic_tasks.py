"""Segmentation and detection on synthetic video: the ``seg-synth`` and ``det-synth`` zoo models.

Both see 64x64 grayscale frames of ``data.moving_objects_clip`` (2–5 moving shapes, half the clips
with a panning camera, sensor noise 0.02) and run as ANNs or, after ``passes.to_sigma_delta``, as
sigma-delta networks whose state persists across the frames of a clip.

- ``seg-synth``: a U-Net-like encoder–decoder (three resolutions, max-pool down, ConvTranspose2d up,
  skips by Add) giving per pixel one logit for each of 5 classes: background and the 4 shapes.
- ``det-synth``: a single-stage CenterNet-style detector. Its (8, 16, 16) output holds, per 4x4-pixel
  cell, 4 class-centre heatmap logits, the box size (w, h) and the centre offset (dx, dy), both in
  cells; ``decode_detections`` turns it into scored boxes (3x3 peak picking, top 20).

Data: training clips use seeds [0, n), held-out clips seeds from ``HELDOUT_SEED_START``. Objects are
textured with Fashion-MNIST items (train split for training, test split for held-out clips) when
``spikestream.data.load_fashion_mnist`` is importable and finds its data, with the plain shaded
shapes otherwise; the choice is stored in the weights' metadata (``texture``) and evaluation uses it.

Training: ``fit`` on single frames, then ``fit_sigma_delta`` on runs of consecutive frames at the
model's sigma-delta operating point (``SEG_SIGMA_DELTA`` / ``DET_SIGMA_DELTA``), so the converted
network keeps the ANN's quality at a low event rate.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import safe_open
from torch import Tensor, nn

from spikestream import ir
from spikestream._progress import status
from spikestream.data import SHAPES, SyntheticClip, TextureProvider, moving_objects_clip, shaded_texture
from spikestream.errors import InputError
from spikestream.metrics import ConfusionMatrix, FrameBoxes, mean_average_precision
from spikestream.models._weights import WEIGHTS_DIR, save_weights
from spikestream.models._zoo import ZooModel, register_model
from spikestream.models.train import SigmaDeltaConfig, TrainConfig, fit, fit_sigma_delta

FRAME_SIZE = 64  # frames are FRAME_SIZE x FRAME_SIZE pixels
NOISE = 0.02  # sensor noise, fraction of full scale
OBJECTS = (2, 5)  # objects per clip, inclusive range
HELDOUT_SEED_START = 1_000_000  # training clips use seeds below this, held-out clips from it on
NUM_SEG_CLASSES = 1 + len(SHAPES)  # 0: background, 1 + j: SHAPES[j]
DET_STRIDE = 4  # pixels per detector output cell
DET_MAX_DETECTIONS = 20  # boxes kept per frame
DET_MIN_SCORE = 0.01  # boxes scoring less are dropped
TEXTURES = ("auto", "fashion-mnist", "shapes")

# Sigma-delta operating points the models are fine-tuned for: θ for the hidden layers' inputs, and
# θ_in for the network input, 2.5 sensor-noise σ. θ_in sets most of the accuracy cost (a stale input
# pixel is off by up to θ_in); the hidden θ sets most of the synops (docs/synthetic_tasks.md).
SEG_SIGMA_DELTA = SigmaDeltaConfig(threshold=0.2, input_threshold=0.05, sparsity_weight=2.0, target_rate=0.05)
DET_SIGMA_DELTA = SigmaDeltaConfig(threshold=0.1, input_threshold=0.05, sparsity_weight=2.0, target_rate=0.05)


class SyntheticTaskError(InputError):
    """A texture choice that is unknown or whose data is missing."""


# --- data -----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FashionMNISTTexture:
    """Objects textured with Fashion-MNIST items: a random item resized to the sprite, drawn bright
    (0.72 + 0.26·v) or dark (0.16·(1 − v)) so the object stays outside the background's band."""

    images: np.ndarray  # uint8 (N, 28, 28)

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        item = self.images[rng.integers(len(self.images))]
        v = cv2.resize(item, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255  # (size, size)
        return 0.72 + 0.26 * v if rng.random() < 0.6 else 0.16 * (1 - v)


def texture_source(texture: str = "auto", split: str = "train") -> tuple[TextureProvider, str]:
    """(provider, name): Fashion-MNIST items of ``split`` where available, else shaded shapes.

    ``texture``: "auto" (Fashion-MNIST if ``spikestream.data.load_fashion_mnist`` exists and finds
    its data, shapes otherwise), "fashion-mnist" (an error if unavailable) or "shapes".
    """
    if texture not in TEXTURES:
        raise SyntheticTaskError(f"unknown texture {texture!r}; choose one of: {', '.join(TEXTURES)}")
    if texture == "shapes":
        return shaded_texture, "shapes"
    try:
        from spikestream.data import load_fashion_mnist  # lands with the Fashion-MNIST loader
        images, _ = load_fashion_mnist(split)
    except (ImportError, InputError, OSError) as error:
        if texture == "fashion-mnist":
            raise SyntheticTaskError(f"Fashion-MNIST textures are not available ({error}); install the Debian "
                                     "package dataset-fashion-mnist or use texture='shapes'") from None
        return shaded_texture, "shapes"
    return FashionMNISTTexture(np.asarray(images, dtype=np.uint8)), "fashion-mnist"


def scene_options(seed: int) -> tuple[int, bool]:
    """(objects, pan) of the task clip with this seed: 2–5 objects, a panning camera in half the clips."""
    options = np.random.default_rng([seed, 0x5EED])  # independent of the clip's own random streams
    return int(options.integers(OBJECTS[0], OBJECTS[1] + 1)), bool(options.random() < 0.5)


def task_clip(seed: int, frames: int, texture: TextureProvider = shaded_texture) -> SyntheticClip:
    """One clip of the synthetic tasks; the seed also picks the object count and whether the camera pans."""
    objects, pan = scene_options(seed)
    return moving_objects_clip(frames=frames, height=FRAME_SIZE, width=FRAME_SIZE, objects=objects, seed=seed,
                               noise=NOISE, pan=pan, texture=texture)


def task_clips(split: str, count: int, frames: int, texture: str = "shapes") -> list[SyntheticClip]:
    """``count`` clips of ``frames`` frames: "train" seeds 0.., "heldout" seeds HELDOUT_SEED_START.."""
    if split not in ("train", "heldout"):
        raise SyntheticTaskError(f"unknown split {split!r}; choose 'train' or 'heldout'")
    provider, _ = texture_source(texture, "train" if split == "train" else "test")
    first = 0 if split == "train" else HELDOUT_SEED_START
    return [task_clip(first + i, frames, provider) for i in range(count)]


def semantic_labels(clip: SyntheticClip) -> np.ndarray:
    """int64 (N, H, W): 0 for background, 1 + shape class where an object is visible."""
    lookup = np.zeros(int(clip.instances.max()) + 1, dtype=np.int64)  # instance j + 1 -> class
    for ids, labels in zip(clip.object_ids, clip.labels, strict=True):
        lookup[ids + 1] = labels + 1
    return lookup[clip.instances]


def _frames_tensor(clips: list[SyntheticClip]) -> Tensor:
    """float32 (clips, N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(np.stack([c.frames for c in clips])).float().div_(255)[:, :, None]


def _flat(targets: Tensor | tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    """(clips, N, ...) -> (clips · N, ...), for a tensor or each tensor of a tuple."""
    return _per_part(targets, lambda t: t.flatten(0, 1))


def _per_part(targets, function):
    return tuple(function(t) for t in targets) if isinstance(targets, tuple) else function(targets)


def _windows(tensor: Tensor, length: int) -> Tensor:
    """(clips, N, ...) -> (clips · N // length, length, ...): non-overlapping runs of consecutive frames."""
    runs = tensor.shape[1] // length
    return tensor[:, :runs * length].reshape(tensor.shape[0] * runs, length, *tensor.shape[2:])


# --- architectures --------------------------------------------------------------------------------


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, batch norm (folded into the convolution on import), ReLU."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU())


class SegSynth(nn.Module):
    """Encoder–decoder over three resolutions (64, 32, 16) with additive skips; 5 logits per pixel."""

    def __init__(self, widths: tuple[int, int, int] = (12, 24, 32), classes: int = NUM_SEG_CLASSES):
        super().__init__()
        c1, c2, c3 = widths
        self.encode1 = _conv_block(1, c1)
        self.encode2 = _conv_block(c1, c2)
        self.encode3 = _conv_block(c2, c3)
        self.bottleneck = _conv_block(c3, c3)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.decode2 = _conv_block(c2, c2)
        self.up1 = nn.ConvTranspose2d(c2, c1, 2, stride=2)
        self.decode1 = _conv_block(c1, c1)
        self.head = nn.Conv2d(c1, classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skip1 = self.encode1(x)  # (B, c1, 64, 64)
        skip2 = self.encode2(self.pool(skip1))  # (B, c2, 32, 32)
        deep = self.bottleneck(self.encode3(self.pool(skip2)))  # (B, c3, 16, 16)
        up2 = self.decode2(torch.relu(self.up2(deep)) + skip2)  # (B, c2, 32, 32)
        up1 = self.decode1(torch.relu(self.up1(up2)) + skip1)  # (B, c1, 64, 64)
        return self.head(up1)  # (B, classes, 64, 64)


class DetSynth(nn.Module):
    """Backbone to stride 4, then a 1x1 head: (4 heatmap logits, w, h, dx, dy) per 4x4-pixel cell."""

    def __init__(self, widths: tuple[int, int, int] = (12, 24, 40), classes: int = len(SHAPES)):
        super().__init__()
        c1, c2, c3 = widths
        self.stem = _conv_block(1, c1)
        self.pool = nn.MaxPool2d(2)
        self.stage2 = _conv_block(c1, c2)
        self.stage3 = nn.Sequential(_conv_block(c2, c3), _conv_block(c3, c3), _conv_block(c3, c3))
        self.head = nn.Conv2d(c3, classes + 4, 1)
        with torch.no_grad():  # heatmaps start at a 0.1 prior, as in CenterNet, for a stable focal loss
            self.head.bias[:classes] = -2.19

    def forward(self, x: Tensor) -> Tensor:
        x = self.stage2(self.pool(self.stem(x)))  # (B, c2, 32, 32)
        return self.head(self.stage3(self.pool(x)))  # (B, classes + 4, 16, 16)


# --- detection targets and decoding ---------------------------------------------------------------


def centre_targets(boxes: np.ndarray, labels: np.ndarray, classes: int = len(SHAPES), size: int = FRAME_SIZE,
                   stride: int = DET_STRIDE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet targets of one frame: heatmap (K, h, w), regression (4, h, w) = (w, h, dx, dy) in cells,
    and the mask (h, w) of cells holding a box centre.

    A box with centre (cx, cy) px sits in cell (⌊cy/s⌋, ⌊cx/s⌋) with offset (cx/s − ⌊cx/s⌋, ...); its
    heatmap is a Gaussian around that cell, σ = max(0.5, (w + h)/(6·s)), peaking at exactly 1.
    """
    cells = size // stride
    heatmap = np.zeros((classes, cells, cells), np.float32)
    regression = np.zeros((4, cells, cells), np.float32)
    mask = np.zeros((cells, cells), np.float32)
    rows, cols = np.mgrid[0:cells, 0:cells].astype(np.float32)
    for (x0, y0, x1, y1), label in zip(boxes, labels, strict=True):
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride  # centre in cells
        column, row = min(int(cx), cells - 1), min(int(cy), cells - 1)
        sigma = max(0.5, ((x1 - x0) + (y1 - y0)) / (6 * stride))
        bump = np.exp(-((rows - row) ** 2 + (cols - column) ** 2) / (2 * sigma**2))
        heatmap[label] = np.maximum(heatmap[label], bump)
        regression[:, row, column] = ((x1 - x0) / stride, (y1 - y0) / stride, cx - column, cy - row)
        mask[row, column] = 1
    return heatmap, regression, mask


def decode_detections(output: np.ndarray | Tensor, classes: int = len(SHAPES), stride: int = DET_STRIDE,
                      max_detections: int = DET_MAX_DETECTIONS, min_score: float = DET_MIN_SCORE,
                      size: int = FRAME_SIZE) -> FrameBoxes:
    """Boxes of one frame from the detector output (K + 4, h, w): local 3x3 maxima of the sigmoid
    heatmaps, highest ``max_detections`` above ``min_score``; box = centre ± size/2, clipped to the frame."""
    output = torch.as_tensor(np.asarray(output) if not isinstance(output, Tensor) else output, dtype=torch.float32)
    heat = torch.sigmoid(output[:classes])  # (K, h, w)
    peaks = heat == F.max_pool2d(heat[None], 3, stride=1, padding=1)[0]
    scores = torch.where(peaks, heat, torch.zeros_like(heat)).flatten()
    top = torch.topk(scores, min(max_detections, scores.numel()))
    keep = top.values >= min_score
    index = top.indices[keep]
    cells = heat.shape[-1] * heat.shape[-2]
    label, cell = index // cells, index % cells
    row, column = cell // heat.shape[-1], cell % heat.shape[-1]
    width, height, dx, dy = (output[classes + i].flatten()[cell] for i in range(4))
    cx, cy = (column + dx) * stride, (row + dy) * stride  # centre in pixels
    half_w, half_h = width.clamp(min=0) * stride / 2, height.clamp(min=0) * stride / 2
    boxes = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1).clamp(0, size)
    return FrameBoxes(boxes.numpy().astype(np.float32), label.numpy().astype(np.int64),
                      top.values[keep].numpy().astype(np.float32))


# --- losses -----------------------------------------------------------------------------------------

SEG_CLASS_WEIGHTS = (1.0, 3.0, 3.0, 3.0, 3.0)  # background is ~90 % of the pixels


def segmentation_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Class-weighted cross-entropy, logits (B, K, H, W) against labels (B, H, W)."""
    return F.cross_entropy(logits, labels, weight=torch.tensor(SEG_CLASS_WEIGHTS, device=logits.device))


def detection_loss(output: Tensor, targets: tuple[Tensor, Tensor, Tensor], classes: int = len(SHAPES)) -> Tensor:
    """CenterNet loss: penalty-reduced focal loss on the heatmaps (α = 2, β = 4) plus L1 on size
    (weight 0.1) and offset (weight 1) at the centre cells, each normalised by the number of boxes."""
    heatmap, regression, mask = targets  # (B, K, h, w), (B, 4, h, w), (B, h, w)
    logits = output[:, :classes]
    positive = (heatmap == 1).float()
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)
    p = torch.sigmoid(logits)
    focal = -(positive * (1 - p) ** 2 * log_p + (1 - positive) * (1 - heatmap) ** 4 * p**2 * log_not_p).sum()
    boxes = mask.sum().clamp(min=1)
    error = (output[:, classes:] - regression).abs() * mask[:, None]  # (B, 4, h, w)
    return (focal + 0.1 * error[:, :2].sum() + error[:, 2:].sum()) / boxes


# --- evaluation -----------------------------------------------------------------------------------


def _streams(graph: ir.Graph, sigma_delta: SigmaDeltaConfig | None):
    from spikestream.engine import Stream
    from spikestream.passes import to_sigma_delta

    if sigma_delta is None:
        return lambda: Stream(graph, "direct")
    converted = to_sigma_delta(graph, sigma_delta.threshold, input_threshold=sigma_delta.input_threshold)
    return lambda: Stream(converted, "sigma-delta")


def _run(graph: ir.Graph, clips: list[SyntheticClip], sigma_delta: SigmaDeltaConfig | None):
    """Stream every clip (a fresh state per clip, kept across its frames) -> ([(clip, outputs)], totals)
    with the trace totals summed over all clips."""
    make_stream = _streams(graph, sigma_delta)
    totals = {"frames": 0, "events": 0, "synops": 0, "dense_macs": 0}
    results = []
    for clip in clips:
        stream = make_stream()
        outputs = [stream.process(frame) for frame in clip.frames]
        summary = stream.trace.totals()
        totals["frames"] += len(clip)
        for key in ("events", "synops", "dense_macs"):
            totals[key] += summary[key]
        results.append((clip, outputs))
    totals["activity"] = totals["synops"] / totals["dense_macs"] if totals["dense_macs"] else 0.0
    return results, totals


def evaluate_segmentation(graph: ir.Graph, clips: list[SyntheticClip],
                          sigma_delta: SigmaDeltaConfig | None = None) -> dict:
    """mIoU (5 classes), foreground/background mIoU, per-class IoU and trace totals over ``clips``.

    ``sigma_delta`` None runs the ANN (``Stream(graph, "direct")``); otherwise the graph converted with
    its thresholds runs as a sigma-delta network, state kept across each clip's frames.
    """
    results, totals = _run(graph, clips, sigma_delta)
    classes, foreground = ConfusionMatrix(NUM_SEG_CLASSES), ConfusionMatrix(2)
    for clip, outputs in results:
        predicted = np.stack(outputs).argmax(axis=1)  # (N, K, H, W) -> (N, H, W)
        truth = semantic_labels(clip)
        classes.update(predicted, truth)
        foreground.update(predicted > 0, truth > 0)
    return {"miou": classes.mean_iou(), "binary_miou": foreground.mean_iou(),
            "iou_per_class": dict(zip(("background", *SHAPES), classes.iou().tolist(), strict=True)),
            "pixel_accuracy": classes.pixel_accuracy(), **totals}


def evaluate_detection(graph: ir.Graph, clips: list[SyntheticClip],
                       sigma_delta: SigmaDeltaConfig | None = None) -> dict:
    """mAP@0.5 (pycocotools, 4 shape classes) and trace totals over ``clips``; see evaluate_segmentation."""
    results, totals = _run(graph, clips, sigma_delta)
    detections, truth = [], []
    for clip, outputs in results:
        detections += [decode_detections(output) for output in outputs]
        truth += [FrameBoxes(b, l) for b, l in zip(clip.boxes, clip.labels, strict=True)]
    return {"map50": mean_average_precision(detections, truth, 0.5), **totals}


def trained_texture(model: ZooModel) -> str:
    """The texture a zoo model's shipped weights were trained on (from their metadata; "shapes" if absent)."""
    if model.weights is None:
        return "shapes"
    with safe_open(str(WEIGHTS_DIR / model.weights), framework="pt") as weights:
        return (weights.metadata() or {}).get("texture", "shapes")


# --- training recipes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticRecipe:
    """How a synthetic-task model is trained (the defaults reproduce the shipped weights)."""

    clips: int = 250  # training clips
    frames: int = 12  # frames per training clip
    epochs: int = 10  # ANN epochs on single frames
    batch_size: int = 32
    lr: float = 3e-3
    fine_tune_epochs: int = 3  # sigma-delta epochs on runs of consecutive frames (0: none)
    fine_tune_frames: int = 6  # frames per run
    fine_tune_batch_size: int = 16  # runs per batch
    fine_tune_lr: float = 1e-3
    heldout_clips: int = 4  # clips of heldout_frames frames for the returned metrics
    heldout_frames: int = 40


SEG_RECIPE = SyntheticRecipe()
DET_RECIPE = SyntheticRecipe()


def _train(kind: str, out_path: str | os.PathLike, seed: int, texture: str, recipe: SyntheticRecipe) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    _, texture_name = texture_source(texture, "train")
    clips = task_clips("train", recipe.clips, recipe.frames, texture_name)
    status(f"{kind}: {recipe.clips} training clips of {recipe.frames} frames, {texture_name} textures")
    frames = _frames_tensor(clips)  # (clips, N, 1, H, W)
    if kind == "seg-synth":
        targets = torch.from_numpy(np.stack([semantic_labels(c) for c in clips]))  # (clips, N, H, W)
        architecture, sigma_delta, frame_loss = SegSynth, SEG_SIGMA_DELTA, segmentation_loss
    else:
        per_frame = [[centre_targets(b, l) for b, l in zip(c.boxes, c.labels, strict=True)] for c in clips]
        targets = tuple(torch.from_numpy(np.stack([[frame[i] for frame in clip] for clip in per_frame]))
                        for i in range(3))  # heatmap, regression, mask, each (clips, N, ...)
        architecture, sigma_delta, frame_loss = DetSynth, DET_SIGMA_DELTA, detection_loss
    torch.manual_seed(seed)
    model = architecture()
    config = TrainConfig(epochs=recipe.epochs, batch_size=recipe.batch_size, lr=recipe.lr, seed=seed)
    history = fit(model, _flat(frames), _flat(targets), lambda m, x, y: frame_loss(m(x), y), config, kind)
    fine_tune_history, before = [], {}
    if recipe.fine_tune_epochs:
        before = heldout_metrics(kind, model, texture_name, recipe.heldout_clips, recipe.heldout_frames)
        sequence_targets = _per_part(targets, lambda t: _windows(t, recipe.fine_tune_frames))
        fine_tune_config = TrainConfig(epochs=recipe.fine_tune_epochs, batch_size=recipe.fine_tune_batch_size,
                                       lr=recipe.fine_tune_lr, seed=seed)
        sequences = _windows(frames, recipe.fine_tune_frames)
        fine_tune_history = fit_sigma_delta(model, sequences, sequence_targets, frame_loss, sigma_delta,
                                            fine_tune_config, f"{kind} sigma-delta")
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    save_weights(model.eval(), out_path, {"model": kind, "seed": seed, "texture": texture_name,
                                          "recipe": repr(recipe), "sigma_delta": repr(sigma_delta)})
    metrics = heldout_metrics(kind, model, texture_name, recipe.heldout_clips, recipe.heldout_frames)
    return {"texture": texture_name, "train_s": train_s, "train_cpu_s": train_cpu_s, "loss": history,
            "sigma_delta_fine_tune": fine_tune_history, "before_fine_tune": before, **metrics}


def heldout_metrics(kind: str, model: nn.Module, texture: str, clips: int, frames: int) -> dict:
    """ANN and sigma-delta quality (at the model's operating point) on held-out clips."""
    from spikestream.frontend import from_torch

    graph = from_torch(model.eval(), (1, FRAME_SIZE, FRAME_SIZE))
    heldout = task_clips("heldout", clips, frames, texture)
    evaluate, sigma_delta = ((evaluate_segmentation, SEG_SIGMA_DELTA) if kind == "seg-synth"
                             else (evaluate_detection, DET_SIGMA_DELTA))
    return {"ann": evaluate(graph, heldout), "sigma_delta": evaluate(graph, heldout, sigma_delta)}


def train_seg_synth(out_path: str | os.PathLike, seed: int = 0, texture: str = "auto",
                    recipe: SyntheticRecipe = SEG_RECIPE) -> dict:
    """Train ``seg-synth`` and write its safetensors to ``out_path``; returns losses and held-out metrics."""
    return _train("seg-synth", Path(out_path), seed, texture, recipe)


def train_det_synth(out_path: str | os.PathLike, seed: int = 0, texture: str = "auto",
                    recipe: SyntheticRecipe = DET_RECIPE) -> dict:
    """Train ``det-synth`` and write its safetensors to ``out_path``; returns losses and held-out metrics."""
    return _train("det-synth", Path(out_path), seed, texture, recipe)


SEG_SYNTH = register_model(ZooModel(
    name="seg-synth",
    description="encoder–decoder segmenting 4 moving shape classes from background on 64x64 synthetic video",
    task="segmentation",
    input_shape=(1, FRAME_SIZE, FRAME_SIZE),
    architecture=SegSynth,
    weights="seg-synth.safetensors",
    train=train_seg_synth,
))

DET_SYNTH = register_model(ZooModel(
    name="det-synth",
    description="CenterNet-style detector of 4 moving shape classes on 64x64 synthetic video",
    task="detection",
    input_shape=(1, FRAME_SIZE, FRAME_SIZE),
    architecture=DetSynth,
    weights="det-synth.safetensors",
    train=train_det_synth,
))
