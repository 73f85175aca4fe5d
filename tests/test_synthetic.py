"""Synthetic moving-objects clips: determinism, ground truth that matches the pixels, the lane prior."""

from __future__ import annotations

import numpy as np
import pytest

from spikestream.data import (
    BACKGROUND_LEVEL,
    SHAPES,
    lane_row_prior,
    moving_objects_clip,
    shape_mask,
)


def _assert_same_clip(a, b) -> None:
    for field in ("frames", "masks", "instances"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    for field in ("boxes", "labels", "object_ids"):
        assert all(np.array_equal(x, y) for x, y in zip(getattr(a, field), getattr(b, field), strict=True)), field


def test_clip_layout_and_types():
    clip = moving_objects_clip(frames=12, height=48, width=80, objects=4, seed=1)
    assert len(clip) == 12
    assert clip.frames.shape == (12, 48, 80) and clip.frames.dtype == np.uint8
    assert clip.masks.shape == clip.frames.shape and clip.masks.dtype == bool
    assert clip.instances.dtype == np.int16 and np.array_equal(clip.masks, clip.instances > 0)
    for boxes, labels, ids in zip(clip.boxes, clip.labels, clip.object_ids, strict=True):
        assert boxes.dtype == np.float32 and boxes.shape == (len(labels), 4) and len(ids) == len(labels)
        assert labels.dtype == np.int64 and np.all((labels >= 0) & (labels < len(SHAPES)))
        assert np.all((boxes[:, :2] >= 0) & (boxes[:, 2:] <= [80, 48]) & (boxes[:, :2] < boxes[:, 2:]))


def test_same_seed_same_clip_and_other_seed_other_clip():
    first, again = (moving_objects_clip(frames=20, seed=5, pan=True) for _ in range(2))
    _assert_same_clip(first, again)
    other = moving_objects_clip(frames=20, seed=6, pan=True)
    assert not np.array_equal(first.frames, other.frames)


def test_noise_and_pan_do_not_change_the_objects():
    plain = moving_objects_clip(frames=15, seed=2, noise=0.0)
    for other in (moving_objects_clip(frames=15, seed=2, noise=0.05), moving_objects_clip(frames=15, seed=2, pan=True)):
        assert np.array_equal(plain.instances, other.instances)


@pytest.mark.parametrize("seed", range(4))
def test_boxes_are_tight_around_each_objects_visible_pixels(seed):
    clip = moving_objects_clip(frames=30, height=48, width=64, objects=6, seed=seed)
    for n in range(len(clip)):
        covered = np.zeros(clip.masks.shape[1:], dtype=bool)
        for (x0, y0, x1, y1), j in zip(clip.boxes[n].astype(int), clip.object_ids[n], strict=True):
            rows, cols = np.nonzero(clip.instances[n] == j + 1)
            assert rows.size > 0  # a box only for a visible object
            assert (rows.min(), rows.max() + 1, cols.min(), cols.max() + 1) == (y0, y1, x0, x1)
            covered[y0:y1, x0:x1] = True
        assert not np.any(clip.masks[n] & ~covered)  # the boxes enclose the whole mask
        visible = set(np.unique(clip.instances[n])) - {0}
        assert visible == {j + 1 for j in clip.object_ids[n]}  # and every visible object has a box


@pytest.mark.parametrize("seed", range(4))
def test_masks_cover_exactly_the_pixels_that_differ_from_the_background(seed):
    clip = moving_objects_clip(frames=40, objects=5, seed=seed, noise=0.0)
    frames = clip.frames.astype(np.int16)
    background = np.where(clip.masks, -1, frames).max(axis=0)  # each pixel's value whenever it is uncovered
    unmasked = ~clip.masks
    assert np.array_equal(frames[unmasked], np.broadcast_to(background, frames.shape)[unmasked])
    low, high = (round(level * 255) for level in BACKGROUND_LEVEL)
    on_objects = frames[clip.masks]
    assert np.all((on_objects < low) | (on_objects > high))  # objects stand out from the background band


@pytest.mark.parametrize("seed", range(3))
def test_pixels_change_only_where_objects_are_without_noise_or_pan(seed):
    clip = moving_objects_clip(frames=40, objects=5, seed=seed, noise=0.0)
    changed = clip.frames[1:] != clip.frames[:-1]
    assert changed.any()
    assert not np.any(changed & ~(clip.masks[1:] | clip.masks[:-1]))
    panned = moving_objects_clip(frames=40, objects=5, seed=seed, noise=0.0, pan=True)
    background_changes = (panned.frames[1:] != panned.frames[:-1]) & ~(panned.masks[1:] | panned.masks[:-1])
    assert background_changes.mean() > 0.05  # the camera moves the background


def test_objects_prefer_the_lower_half_of_the_frame():
    prior = lane_row_prior(64)
    assert prior.shape == (64,) and np.isclose(prior.sum(), 1) and prior[32:].sum() > 0.85
    lower = total = 0
    for seed in range(40):
        clip = moving_objects_clip(frames=10, objects=4, seed=seed, noise=0.0)
        for boxes in clip.boxes:
            centres_y = (boxes[:, 1] + boxes[:, 3]) / 2
            lower += int(np.sum(centres_y >= 32))
            total += len(centres_y)
    # 160 objects from a prior with ~90 % mass below the middle; uniform rows would give ~50 %
    assert total > 1000 and lower / total > 0.75


def test_a_texture_provider_sets_the_objects_appearance():
    def white(rng, size):
        return np.ones((size, size), dtype=np.float32)

    clip = moving_objects_clip(frames=5, seed=3, noise=0.0, texture=white)
    assert np.all(clip.frames[clip.masks] == 255)

    with pytest.raises(ValueError, match=r"texture provider returned shape \(2, 2\)"):
        moving_objects_clip(frames=2, texture=lambda rng, size: np.zeros((2, 2)))


def test_shape_masks():
    size = 21
    assert shape_mask("square", size).all()
    disc, ring, triangle = shape_mask("disc", size), shape_mask("ring", size), shape_mask("triangle", size)
    assert abs(disc.sum() - np.pi * (size / 2) ** 2) < 0.05 * disc.sum()
    assert disc[10, 10] and not ring[10, 10] and ring[10, 0] and not (ring & ~disc).any()
    assert triangle[0].sum() < triangle[-1].sum() and triangle[-1].sum() >= size - 1
    with pytest.raises(ValueError, match="unknown shape 'star'"):
        shape_mask("star", 5)


@pytest.mark.parametrize(("options", "message"), [
    ({"frames": 0}, "need frames >= 1"),
    ({"height": 4}, "at least 8x8"),
    ({"noise": -0.1}, "must be >= 0"),
])
def test_bad_arguments_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        moving_objects_clip(**options)
