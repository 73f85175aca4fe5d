"""Synthetic video with ground truth: shapes moving over a textured background.

``moving_objects_clip`` renders grayscale clips in which squares, discs, triangles and rings of
several sizes move in "lanes" over a static textured background, occlude each other, and are
seen through a noisy sensor, optionally by a slowly panning camera. Every frame comes with
per-pixel masks, a per-pixel instance map, tight boxes and class labels, so segmentation,
detection and the masking study run on it without any download.

Scene model
-----------
- Object j has a shape, a side length ``size_j`` (pixels), a texture, a lane row and a velocity.
  Positions are the top-left corner (x, y) of the object's square sprite, in screen pixels:
  x(t) = x0 + vx·t, then either *reflected* into [0, W − size] (the object bounces off the sides)
  or *wrapped* into [−size, W) (it leaves on one side and re-enters on the other, never split).
  y(t) bounces inside a narrow band around the object's lane, so lanes persist over the clip.
- Lane rows come from ``lane_row_prior``: most mass in the lower half of the frame, like cars and
  pedestrians in driving video. This is the location prior a static region mask learns.
- Objects in lower lanes are nearer the camera, so they are drawn later and occlude the others.
- The camera pan, when on, slides the view over a larger background canvas; the objects'
  trajectories are defined on screen (equivalently, their world motion includes the pan).
- Sensor noise is Gaussian with standard deviation ``noise`` (fraction of full scale), added
  before quantization to uint8.

Randomness: one ``numpy.random.SeedSequence(seed)`` is split into independent streams for the
objects, the background, the camera and the noise, so changing ``noise`` or ``pan`` leaves the
objects and their motion unchanged.

Textures are pluggable: any ``TextureProvider`` (rng, size) → float32 (size, size) in [0, 1]
gives each object its appearance inside its shape (e.g. Fashion-MNIST items, in a later issue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

SHAPES = ("square", "disc", "triangle", "ring")  # label j means SHAPES[j]

SIZE_FRACTIONS = (0.10, 0.14, 0.19, 0.25)  # object side as a fraction of min(H, W)
MIN_OBJECT_SIZE = 4  # pixels: smaller sprites no longer look like their shape
SPEED_RANGE = (0.3, 1.4)  # |vx| in pixels per frame at 64 px wide; scaled with the width
VERTICAL_SPEED = 0.25  # max |vy| in pixels per frame at 64 px high; scaled with the height
LANE_HALF_WIDTH = 0.06  # the band the object's centre bounces in around its lane, fraction of H
LANE_CENTRE, LANE_SPREAD, LANE_FLOOR = 0.72, 0.12, 0.05  # lane_row_prior: Gaussian bump + floor
PAN_MARGIN = 0.15  # background canvas margin on each side, fraction of min(H, W)
PAN_SPEED = (0.30, 0.12)  # camera (x, y) speed in pixels per frame at 64 px; scaled with the size
BACKGROUND_LEVEL = (0.25, 0.65)  # background intensities stay in this band, objects outside it


class TextureProvider(Protocol):
    """Gives one object its appearance; called once per object with the clip's object generator."""

    def __call__(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """A float32 (size, size) texture in [0, 1]; only the pixels inside the shape are shown."""


@dataclass(frozen=True)
class SyntheticClip:
    """A rendered clip and its ground truth. Boxes, labels and object ids are row-aligned per frame."""

    frames: np.ndarray  # uint8 (N, H, W)
    masks: np.ndarray  # bool (N, H, W): True where any object is visible
    boxes: list[np.ndarray]  # per frame float32 (k, 4): x0, y0, x1, y1 pixel edges, tight around the visible part
    labels: list[np.ndarray]  # per frame int64 (k,): shape class, an index into SHAPES
    instances: np.ndarray  # int16 (N, H, W): 0 background, j + 1 where object j is visible (on top)
    object_ids: list[np.ndarray]  # per frame int64 (k,): the object j behind each box (a track id)

    def __len__(self) -> int:
        return len(self.frames)


def shape_mask(shape: str, size: int) -> np.ndarray:
    """The pixels of ``shape`` in a (size, size) sprite, as bool, sampled at pixel centres.

    square: the whole sprite; disc: d ≤ r; ring: 0.55·r ≤ d ≤ r (d from the sprite centre,
    r = size/2); triangle: apex at the top centre, base on the bottom row, half width r·(y + ½)/size.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; choose one of: {', '.join(SHAPES)}")
    if size < 1:
        raise ValueError(f"shape size must be a positive number of pixels, not {size}")
    centre, radius = (size - 1) / 2, size / 2
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    distance_sq = (rows - centre) ** 2 + (cols - centre) ** 2
    if shape == "square":
        mask = np.ones((size, size), dtype=bool)
    elif shape == "disc":
        mask = distance_sq <= radius**2
    elif shape == "ring":
        mask = (distance_sq <= radius**2) & (distance_sq >= (0.55 * radius) ** 2)
    else:  # triangle
        mask = np.abs(cols - centre) <= radius * (rows + 0.5) / size
    return mask


def shaded_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """The default appearance: a bright or dark level with a gentle linear shading across the object."""
    level = rng.uniform(0.78, 0.95) if rng.random() < 0.6 else rng.uniform(0.03, 0.15)
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:size, 0:size] / max(size - 1, 1) - 0.5  # in [-½, ½]
    shading = 0.08 * (np.cos(angle) * cols + np.sin(angle) * rows)  # ±0.04 across the object
    return np.clip(level + shading, 0, 1).astype(np.float32)


def lane_row_prior(height: int) -> np.ndarray:
    """Probability of each row as an object's lane centre, (H,) summing to 1.

    p(y) ∝ FLOOR + exp(−½·((y + ½)/H − CENTRE)² / SPREAD²): a bump at 72 % of the height over a
    small uniform floor, so about 90 % of lanes lie in the lower half of the frame.
    """
    rows = (np.arange(height) + 0.5) / height
    density = LANE_FLOOR + np.exp(-0.5 * ((rows - LANE_CENTRE) / LANE_SPREAD) ** 2)
    return density / density.sum()


def textured_background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A static float32 (H, W) background in BACKGROUND_LEVEL: smooth noise plus faint stripes."""
    cell = 8  # smooth noise varies over about this many pixels
    coarse = rng.random((height // cell + 2, width // cell + 2)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)  # (H, W), about [0, 1]
    angle, period, phase = rng.uniform(0, np.pi), rng.uniform(6, 16), rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
    stripes = np.sin(2 * np.pi * (cols * np.cos(angle) + rows * np.sin(angle)) / period + phase)
    low, high = BACKGROUND_LEVEL
    middle, half_range = (low + high) / 2, (high - low) / 2
    return np.clip(middle + 0.7 * half_range * (smooth - 0.5) * 2 + 0.3 * half_range * stripes, low, high)


def _reflect(position: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Fold positions into [0, length] as a ball bouncing between two walls (length may be 0)."""
    period = np.maximum(2 * length, 1e-9)
    folded = np.mod(position, period)
    return np.where(length > 0, length - np.abs(length - folded), 0.0)


def _round(values: np.ndarray) -> np.ndarray:
    return np.floor(values + 0.5).astype(np.int64)  # half up, as everywhere in spikestream


@dataclass(frozen=True)
class _Objects:
    """Per-object parameters (one entry per object) and screen trajectories (N, k) of sprite corners."""

    shapes: np.ndarray  # int64 (k,)
    sizes: np.ndarray  # int64 (k,)
    lanes: np.ndarray  # int64 (k,): lane centre row
    x: np.ndarray  # int64 (N, k): sprite left column
    y: np.ndarray  # int64 (N, k): sprite top row
    sprites: list[np.ndarray]  # bool (size, size) per object
    textures: list[np.ndarray]  # float32 (size, size) per object


def _make_objects(rng: np.random.Generator, frames: int, height: int, width: int, count: int,
                  texture: TextureProvider) -> _Objects:
    shapes = rng.integers(len(SHAPES), size=count)
    sizes = np.maximum(_round(rng.choice(SIZE_FRACTIONS, size=count) * min(height, width)), MIN_OBJECT_SIZE)
    sizes = np.minimum(sizes, min(height, width))
    lanes = rng.choice(height, size=count, p=lane_row_prior(height))
    speed_x = rng.uniform(*SPEED_RANGE, size=count) * width / 64 * rng.choice((-1, 1), size=count)
    speed_y = rng.uniform(-VERTICAL_SPEED, VERTICAL_SPEED, size=count) * height / 64
    wraps = rng.random(count) < 0.5  # half leave and re-enter, half bounce off the sides

    t = np.arange(frames)[:, None]  # (N, 1)
    room_x = (width - sizes).astype(np.float64)  # (k,) free columns for a bouncing sprite
    start_x = rng.uniform(0, 1, size=count) * room_x
    travelled = start_x + speed_x * t  # (N, k)
    bounced = _reflect(travelled, room_x)
    wrapped = np.mod(travelled + sizes, width + sizes) - sizes  # in [−size, W): enters and leaves whole
    x = np.where(wraps, wrapped, bounced)

    band = LANE_HALF_WIDTH * height
    top_low = np.clip(lanes - band - sizes / 2, 0, height - sizes)  # (k,) the lane band for the top row
    top_high = np.clip(lanes + band - sizes / 2, 0, height - sizes)
    start_y = rng.uniform(0, 1, size=count) * (top_high - top_low)
    y = top_low + _reflect(start_y + speed_y * t, top_high - top_low)  # (N, k)

    sprites = [shape_mask(SHAPES[s], int(n)) for s, n in zip(shapes, sizes, strict=True)]
    textures = []
    for n in sizes:
        patch = np.asarray(texture(rng, int(n)), dtype=np.float32)
        if patch.shape != (n, n):
            raise ValueError(f"texture provider returned shape {patch.shape}, expected ({n}, {n})")
        textures.append(np.clip(patch, 0, 1))
    return _Objects(shapes, sizes, lanes, _round(x), _round(y), sprites, textures)


def _camera_offsets(rng: np.random.Generator, frames: int, height: int, width: int, margin: int) -> np.ndarray:
    """(N, 2) integer (row, column) offsets of the view inside the canvas: a slow drift bouncing in 2·margin."""
    scale = min(height, width) / 64
    speed = np.array([PAN_SPEED[1], PAN_SPEED[0]]) * scale * rng.choice((-1, 1), size=2)  # (row, col)
    start = rng.uniform(0, 2 * margin, size=2)
    t = np.arange(frames)[:, None]
    return _round(_reflect(start + speed * t, np.full(2, 2.0 * margin)))


def moving_objects_clip(frames: int = 50, height: int = 64, width: int = 64, objects: int = 3, seed: int = 0,
                        noise: float = 0.02, pan: bool = False,
                        texture: TextureProvider = shaded_texture) -> SyntheticClip:
    """Render a grayscale clip of moving shapes with ground truth (see the module docstring).

    Deterministic for a given ``seed``. Returns frames uint8 (N, H, W), masks, instances, and per
    frame the tight boxes (x0, y0, x1, y1: the visible part covers columns x0..x1−1, rows
    y0..y1−1), shape labels and object ids of the objects with at least one visible pixel.
    """
    if frames < 1 or objects < 0:
        raise ValueError(f"need frames >= 1 and objects >= 0, got frames={frames}, objects={objects}")
    if height < 8 or width < 8:
        raise ValueError(f"frames must be at least 8x8 pixels, got {width}x{height} (W x H)")
    if not 0 <= noise < np.inf:
        raise ValueError(f"noise is a standard deviation in [0, 1] units and must be >= 0, not {noise}")
    object_rng, background_rng, camera_rng, noise_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4))
    scene = _make_objects(object_rng, frames, height, width, objects, texture)

    if pan:
        margin = max(2, _round(PAN_MARGIN * min(height, width)))
        canvas = textured_background(background_rng, height + 2 * margin, width + 2 * margin)
        offsets = _camera_offsets(camera_rng, frames, height, width, margin)  # (N, 2)
        views = np.lib.stride_tricks.sliding_window_view(canvas, (height, width))  # (2m+1, 2m+1, H, W)
        image = views[offsets[:, 0], offsets[:, 1]].astype(np.float32)  # (N, H, W), a copy
    else:
        image = np.repeat(textured_background(background_rng, height, width)[None], frames, axis=0)
    instances = np.zeros((frames, height, width), dtype=np.int16)

    draw_order = np.argsort(scene.lanes, kind="stable")  # lower lanes are nearer: drawn last, on top
    for j in draw_order:
        sprite, texture_patch, size = scene.sprites[j], scene.textures[j], int(scene.sizes[j])
        for n in range(frames):
            left, top = int(scene.x[n, j]), int(scene.y[n, j])
            x0, x1, y0, y1 = max(left, 0), min(left + size, width), max(top, 0), min(top + size, height)
            if x0 >= x1 or y0 >= y1:
                continue  # off screen (a wrapping object between exit and entry)
            inside = sprite[y0 - top:y1 - top, x0 - left:x1 - left]
            image[n, y0:y1, x0:x1][inside] = texture_patch[y0 - top:y1 - top, x0 - left:x1 - left][inside]
            instances[n, y0:y1, x0:x1][inside] = j + 1

    boxes, labels, object_ids = _ground_truth(instances, scene)
    if noise > 0:
        image += noise_rng.standard_normal(image.shape, dtype=np.float32) * noise
    pixels = _round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return SyntheticClip(pixels, instances > 0, boxes, labels, instances, object_ids)


def _ground_truth(instances: np.ndarray, scene: _Objects
                  ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Tight boxes of each object's visible pixels, searched only inside its sprite's window."""
    frames, height, width = instances.shape
    boxes, labels, object_ids = [], [], []
    for n in range(frames):
        frame_boxes, frame_ids = [], []
        for j, size in enumerate(scene.sizes):
            left, top = int(scene.x[n, j]), int(scene.y[n, j])
            x0, y0 = max(left, 0), max(top, 0)
            window = instances[n, y0:min(top + size, height), x0:min(left + size, width)] == j + 1
            rows, cols = np.flatnonzero(window.any(axis=1)), np.flatnonzero(window.any(axis=0))
            if rows.size:  # hidden or off-screen objects get no box
                frame_boxes.append((x0 + cols[0], y0 + rows[0], x0 + cols[-1] + 1, y0 + rows[-1] + 1))
                frame_ids.append(j)
        ids = np.array(frame_ids, dtype=np.int64)
        boxes.append(np.array(frame_boxes, dtype=np.float32).reshape(-1, 4))
        labels.append(scene.shapes[ids].astype(np.int64))
        object_ids.append(ids)
    return boxes, labels, object_ids
