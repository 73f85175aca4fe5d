"""seg-motion: moving-object segmentation of real surveillance video, distilled from OpenCV's MOG2.

Teacher
-------
OpenCV's MOG2 background subtractor (default parameters: history 500, variance threshold 16,
shadow detection on) runs over the colour frames of ``vtest.avi`` at full size (768x576). Its
masks are cleaned (``clean_teacher_mask``): shadow pixels (value 127) are dropped, an opening with
a 5x5 ellipse removes speckle and the thin overhead wire that flickers in the wind, and the mask is
shrunk to the model's 384x288 by area averaging (a pixel is foreground when at least half of its
area was). The masks are cached (``teacher_masks``), so retraining and benchmarks never rerun MOG2.
Frames 0–599 train (from ``WARMUP_FRAMES`` on: MOG2 and the background estimate both need a few
frames to settle), frames 600–794 test.

Input pipeline: why two channels
--------------------------------
MOG2 marks pixels that differ from a *background* it has learnt over hundreds of frames. From one
frame alone a network cannot tell a walking person from a person-shaped poster, or from a person
who stood still long enough for MOG2 to absorb them. So ``motion_inputs`` feeds two channels:

- channel 0: the current frame, gray, in [0, 1];
- channel 1: frame − background, in [−1, 1], against a running *approximate median* background:
  ``b ← b + clip(f − b, −s_t, s_t)`` with a step of ``s_t = max(1/255, 8/255 / (1 + t/25))``, i.e.
  one gray level per frame after a faster start (McFarlane & Schofield's "sigma-delta" background
  estimator). Unlike a running mean it is not dragged along by people walking through, and like
  MOG2 it slowly absorbs whatever stops moving.

On frames 600–794 (384x288), thresholding |frame − background| alone reaches IoU 0.76 against the
teacher, the difference to the *previous* frame only 0.33 (it fires on moving edges, is hollow
inside uniform clothing, and is zero for someone pausing). The network adds shape, shadow
rejection (a shadow darkens by a roughly constant ratio) and clean-up on top of the background
difference. Both channels change only where the scene changes, which a sigma-delta network turns
into sparse events.

Network
-------
``MotionSegmenter``: a fully convolutional encoder–decoder with 7 convolutions, 8–24 channels:
three stride-2 3x3 convolutions (2→8→16→24), a dilated 3x3 context convolution at 1/8 size, two
nearest-upsampling decoder convolutions with additive skips from the encoder, a 1x1 head at half
size and a bilinear 2x upsampling of the logit to the input size. ReLU everywhere, so
``to_sigma_delta`` converts it without changes.

Training and results
--------------------
``train`` reproduces the shipped weights: AdamW, cosine schedule, binary cross-entropy plus soft
Dice loss on random 144x192 crops with horizontal flips, seeded. IoU is the dataset IoU (the sum
over frames of |prediction ∩ teacher| over the sum of |prediction ∪ teacher|) on frames 600–794;
``SHIPPED_IOU`` (0.829) is what the shipped weights reach there as an ANN; as a sigma-delta network
with θ = 0.05 they reach 0.830 at 6.8 % of the dense MACs. Tables: ``docs/seg-motion.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikestream._atomic import atomic_path
from spikestream._progress import progress, status
from spikestream.models._weights import save_weights
from spikestream.models._zoo import ZooModel, register_model
from spikestream.models.train import TrainConfig, fit

INPUT_SIZE = (384, 288)  # (W, H) of the network input and of the teacher masks
VIDEO = "vtest.avi"  # the sample video the model is trained and tested on
TRAIN_FRAMES = range(0, 600)
TEST_FRAMES = range(600, 795)
WARMUP_FRAMES = 25  # first frames left out of training: MOG2 and the background estimate settle
SHIPPED_IOU = 0.8287  # ANN IoU vs the teacher on TEST_FRAMES of the shipped weights (train() with seed 0)

# Background estimate of motion_inputs: one gray level per frame, faster at the start.
BACKGROUND_STEP = 1 / 255  # per-frame step of the approximate median, in [0, 1] units
BACKGROUND_START_STEP = 8 / 255  # step at frame 0 ...
BACKGROUND_START_FRAMES = 25  # ... decaying as 1 / (1 + t / this) down to BACKGROUND_STEP


# --- teacher ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeacherConfig:
    history: int = 500  # MOG2 frames of history (OpenCV default)
    var_threshold: float = 16.0  # MOG2 squared Mahalanobis distance threshold (OpenCV default)
    opening: int = 5  # side of the elliptical opening applied at the video's own size (pixels)
    size: tuple[int, int] = INPUT_SIZE  # (W, H) the cleaned masks are shrunk to


MOG2_FOREGROUND = 255  # MOG2 mask values: 255 foreground, 127 shadow, 0 background
TEACHER_CACHE_VERSION = 1  # bump when the teacher recipe changes


def clean_teacher_mask(raw: np.ndarray, config: TeacherConfig = TeacherConfig()) -> np.ndarray:
    """A MOG2 mask (uint8 0/127/255) → bool (H, W) at ``config.size``: drop shadows, open, shrink."""
    foreground = (raw == MOG2_FOREGROUND).astype(np.uint8)
    if config.opening > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (config.opening, config.opening))
        foreground = cv2.morphologyEx(foreground, cv2.MORPH_OPEN, kernel)
    if (foreground.shape[1], foreground.shape[0]) != config.size:
        area = cv2.resize(foreground.astype(np.float32), config.size, interpolation=cv2.INTER_AREA)
        return area >= 0.5
    return foreground.astype(bool)


def run_teacher(frames: Iterable[np.ndarray], config: TeacherConfig = TeacherConfig()) -> Iterator[np.ndarray]:
    """MOG2 over colour (H, W, 3) RGB or gray (H, W) uint8 frames; yields cleaned bool masks."""
    subtractor = cv2.createBackgroundSubtractorMOG2(history=config.history, varThreshold=config.var_threshold,
                                                    detectShadows=True)
    for frame in frames:
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
        yield clean_teacher_mask(subtractor.apply(image), config)


def teacher_masks(video: str | os.PathLike | None = None, config: TeacherConfig = TeacherConfig()) -> np.ndarray:
    """Cleaned MOG2 masks of every frame of ``video`` (default: vtest.avi), bool (N, H, W), cached.

    The cache file lives in ``spikestream.data.cache_dir()/seg-motion/`` and is keyed by the video's
    name, size and modification time and by the teacher configuration; it is written atomically.
    """
    from spikestream.data import cache_dir, find_sample_video, read_frames

    path = Path(video) if video is not None else find_sample_video(VIDEO)
    stat = path.stat()
    key = json.dumps({"video": path.name, "bytes": stat.st_size, "mtime": int(stat.st_mtime),
                      "config": asdict(config), "version": TEACHER_CACHE_VERSION}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    cached = cache_dir() / "seg-motion" / f"teacher-{path.stem}-{digest}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as data:
                width, height = config.size
                count = int(data["frames"])
                return np.unpackbits(data["bits"], count=count * height * width).reshape(count, height, width) \
                    .astype(bool)
        except (OSError, ValueError, KeyError, EOFError):
            pass  # a damaged cache file is recomputed and replaced
    status(f"seg-motion: computing MOG2 teacher masks of {path.name} (cached in {cached.parent})")
    frames = (f.image for f in read_frames(path, grayscale=False))
    masks = np.stack(list(progress(run_teacher(frames, config), description="teacher (MOG2)")))
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, bits=np.packbits(masks), frames=np.array(len(masks)), key=np.array(key))
    return masks


# --- input pipeline -----------------------------------------------------------------------------


def _gray_unit(frame: np.ndarray) -> np.ndarray:
    """A frame (H, W) or (H, W, 3), uint8 or float in [0, 1] → float32 (H, W) gray in [0, 1]."""
    frame = np.asarray(frame)
    if frame.ndim == 3 and frame.shape[-1] == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.dtype == np.uint8 \
            else frame.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    elif frame.ndim == 3 and frame.shape[0] == 1:
        frame = frame[0]
    if frame.ndim != 2:
        from spikestream.errors import InputError
        raise InputError(f"seg-motion takes gray (H, W) or RGB (H, W, 3) frames, not shape {frame.shape}")
    return frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float32)


def motion_inputs(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Frames → seg-motion inputs float32 (2, H, W): the frame and frame − running background.

    The background is an approximate median, ``b ← b + clip(f − b, −s_t, s_t)``, started at the
    first frame, with ``s_t = max(BACKGROUND_STEP, BACKGROUND_START_STEP / (1 + t / BACKGROUND_START_FRAMES))``.
    The difference is taken against the background *before* it sees the current frame.
    """
    background = None
    for t, frame in enumerate(frames):
        gray = _gray_unit(frame)  # (H, W)
        if background is None:
            background = gray.copy()
        difference = gray - background  # (H, W) in [-1, 1]
        step = max(BACKGROUND_STEP, BACKGROUND_START_STEP / (1 + t / BACKGROUND_START_FRAMES))
        background += np.clip(difference, -step, step)
        yield np.stack([gray, difference])  # (2, H, W)


# --- network ------------------------------------------------------------------------------------


class MotionSegmenter(nn.Module):
    """(2, H, W) frame and background difference → (1, H, W) foreground logit; H, W multiples of 8."""

    def __init__(self):
        super().__init__()
        self.encode1 = nn.Conv2d(2, 8, 3, stride=2, padding=1)  # 1/2
        self.encode2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)  # 1/4
        self.encode3 = nn.Conv2d(16, 24, 3, stride=2, padding=1)  # 1/8
        self.context = nn.Conv2d(24, 24, 3, padding=2, dilation=2)  # 1/8, receptive field +8 px there
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.decode2 = nn.Conv2d(24, 16, 3, padding=1)  # 1/4
        self.decode1 = nn.Conv2d(16, 8, 3, padding=1)  # 1/2
        self.head = nn.Conv2d(8, 1, 1)  # 1/2
        self.output_upsample = nn.Upsample(scale_factor=2, mode="bilinear")  # 1/1

    def forward(self, x):
        e1 = torch.relu(self.encode1(x))  # (B, 8, H/2, W/2)
        e2 = torch.relu(self.encode2(e1))  # (B, 16, H/4, W/4)
        e3 = torch.relu(self.encode3(e2))  # (B, 24, H/8, W/8)
        c = torch.relu(self.context(e3))  # (B, 24, H/8, W/8)
        d2 = torch.relu(self.decode2(self.upsample(c)) + e2)  # (B, 16, H/4, W/4)
        d1 = torch.relu(self.decode1(self.upsample(d2)) + e1)  # (B, 8, H/2, W/2)
        return self.output_upsample(self.head(d1))  # (B, 1, H, W)


def foreground(logits: np.ndarray | Tensor) -> np.ndarray:
    """Logits (..., H, W) → bool foreground mask (logit > 0, i.e. probability > 1/2)."""
    return np.asarray(logits) > 0


def mask_iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """Dataset IoU: Σ|p ∩ t| / Σ|p ∪ t| over all frames (1.0 when both are empty everywhere)."""
    predicted, target = np.asarray(predicted, bool), np.asarray(target, bool)
    union = np.logical_or(predicted, target).sum()
    return float(np.logical_and(predicted, target).sum() / union) if union else 1.0


# --- data set and training ----------------------------------------------------------------------


def video_inputs(video: str | os.PathLike | None = None, frames: int | None = None,
                 dtype: np.dtype = np.float32) -> np.ndarray:
    """motion_inputs of the frames of ``video`` (default vtest.avi) at INPUT_SIZE: (N, 2, H, W) of ``dtype``."""
    from spikestream.data import find_sample_video, read_frames

    path = Path(video) if video is not None else find_sample_video(VIDEO)
    gray = (f.image for f in read_frames(path, size=INPUT_SIZE, grayscale=True, max_frames=frames))
    return np.stack([x.astype(dtype) for x in motion_inputs(gray)])


@dataclass(frozen=True)
class SegMotionTraining:
    epochs: int = 30
    batch_size: int = 8
    lr: float = 4e-3  # AdamW, cosine-annealed to zero
    weight_decay: float = 1e-4
    crop: tuple[int, int] = (144, 192)  # (H, W) random crop per sample, multiples of 8
    dice_weight: float = 1.0  # loss = BCE + dice_weight · (1 − soft Dice)


def _segmentation_loss(config: SegMotionTraining, generator: torch.Generator):
    crop_h, crop_w = config.crop

    def loss_fn(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        # x (B, 2, H, W) float16, y (B, H, W) bool -> one random crop and flip per batch
        top = int(torch.randint(0, x.shape[-2] - crop_h + 1, (1,), generator=generator))
        left = int(torch.randint(0, x.shape[-1] - crop_w + 1, (1,), generator=generator))
        x = x[..., top:top + crop_h, left:left + crop_w].float()
        y = y[:, None, top:top + crop_h, left:left + crop_w].float()  # (B, 1, h, w)
        if bool(torch.randint(0, 2, (1,), generator=generator)):
            x, y = x.flip(-1), y.flip(-1)
        logits = model(x)
        bce = F.binary_cross_entropy_with_logits(logits, y)
        probability = torch.sigmoid(logits)
        dice = (2 * (probability * y).sum() + 1) / (probability.sum() + y.sum() + 1)
        return bce + config.dice_weight * (1 - dice)

    return loss_fn


def predict(model: nn.Module, inputs: np.ndarray, batch_size: int = 8) -> np.ndarray:
    """ANN logits float32 (N, 1, H, W) of inputs (N, 2, H, W)."""
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            outputs.append(model(torch.from_numpy(np.asarray(inputs[start:start + batch_size], np.float32))).numpy())
    return np.concatenate(outputs)


def train(out_path: str | os.PathLike, seed: int = 0, config: SegMotionTraining = SegMotionTraining(),
          max_steps: int | None = None) -> dict:
    """Train seg-motion on vtest.avi frames WARMUP_FRAMES..599 against the MOG2 teacher; save safetensors.

    ``max_steps`` (tests only) stops after that many batches. Returns the metrics, IoU on 600–794 included.
    """
    torch.manual_seed(seed)
    start = time.perf_counter()
    masks = teacher_masks()
    inputs = video_inputs(dtype=np.float16)  # (795, 2, H, W): half the memory
    if len(inputs) < TEST_FRAMES.stop or len(masks) < TEST_FRAMES.stop:
        raise RuntimeError(f"{VIDEO} has {len(inputs)} frames, expected at least {TEST_FRAMES.stop}")
    train_index = slice(TRAIN_FRAMES.start + WARMUP_FRAMES, TRAIN_FRAMES.stop)
    x = torch.from_numpy(inputs[train_index])  # (N, 2, H, W) float16
    y = torch.from_numpy(masks[train_index])  # (N, H, W) bool
    if max_steps is not None:
        x, y = x[:max_steps * config.batch_size], y[:max_steps * config.batch_size]
    train_config = TrainConfig(epochs=config.epochs if max_steps is None else 1, batch_size=config.batch_size,
                               lr=config.lr, weight_decay=config.weight_decay, seed=seed)
    model = MotionSegmenter()
    loss_fn = _segmentation_loss(config, torch.Generator().manual_seed(seed + 1))
    history = fit(model, x, y, loss_fn, train_config, description="seg-motion")
    test = slice(TEST_FRAMES.start, TEST_FRAMES.stop)
    iou = mask_iou(foreground(predict(model, inputs[test])[:, 0]), masks[test])
    metrics = {"iou_vs_teacher": iou, "test_frames": f"{TEST_FRAMES.start}-{TEST_FRAMES.stop - 1}",
               "final_loss": history[-1], "train_wall_s": time.perf_counter() - start}
    save_weights(model, out_path, metadata={"model": "seg-motion", "seed": seed,
                                            "iou_vs_teacher": f"{iou:.4f}"})
    return metrics


register_model(ZooModel(
    name="seg-motion",
    description="moving-object segmentation of surveillance video (frame + background difference), "
                "distilled from OpenCV MOG2 on vtest.avi",
    task="segmentation",
    input_shape=(2, INPUT_SIZE[1], INPUT_SIZE[0]),
    architecture=MotionSegmenter,
    weights="seg-motion.safetensors",
    train=train,
    preprocess=motion_inputs,
))
