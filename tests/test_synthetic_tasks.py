"""seg-synth and det-synth: shipped weights load and reach their documented quality on held-out video,
their sigma-delta versions stay close to the ANN, detection targets decode back to the boxes, the
differentiable sigma-delta simulation matches the engine, and the training recipe runs (one batch)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

import spikestream.data
from spikestream.data import SHAPES, shaded_texture
from spikestream.data.fashion_mnist import find_fashion_mnist
from spikestream.engine import Stream
from spikestream.frontend import from_torch
from spikestream.metrics import FrameBoxes, mean_average_precision
from spikestream.models import WEIGHTS_DIR, get_model, load_weights, synthetic_tasks
from spikestream.models.synthetic_tasks import (
    DET_SIGMA_DELTA,
    SEG_SIGMA_DELTA,
    SyntheticRecipe,
    centre_targets,
    decode_detections,
    evaluate_detection,
    evaluate_segmentation,
    semantic_labels,
    task_clip,
    task_clips,
    texture_source,
    trained_texture,
)
from spikestream.models.train import SigmaDeltaSimulation
from spikestream.passes import to_sigma_delta

# Quality floors on the test's short held-out clips (3 clips x 30 frames), a few points below what the shipped
# weights reach there (ANN mIoU 0.822, mAP@0.5 0.707; docs/synthetic_tasks.md measures 8 x 50 frames), and the
# ANN/sigma-delta tolerances on them (measured: -0.16 and +0.71 points, activity 0.097).
TOLERANCES = {
    "seg-synth": {"ann_floor": 0.75, "delta_pt": 1.5, "max_activity": 0.12},
    "det-synth": {"ann_floor": 0.65, "delta_pt": 2.5},
}
CLIPS, FRAMES = 3, 30


@pytest.fixture(scope="module", params=["seg-synth", "det-synth"])
def shipped(request):
    entry = get_model(request.param)
    texture = trained_texture(entry)
    if texture == "fashion-mnist" and find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    graph = from_torch(entry.build(), entry.input_shape)
    clips = task_clips("heldout", CLIPS, FRAMES, texture)
    evaluate, sigma_delta = ((evaluate_segmentation, SEG_SIGMA_DELTA) if entry.name == "seg-synth"
                             else (evaluate_detection, DET_SIGMA_DELTA))
    return entry.name, evaluate(graph, clips), evaluate(graph, clips, sigma_delta)


def test_shipped_models_are_registered_with_safetensors_weights():
    for name in ("seg-synth", "det-synth"):
        entry = get_model(name)
        assert entry.weights == f"{name}.safetensors" and entry.train is not None
        module = entry.build()
        assert not module.training
        size = (WEIGHTS_DIR / entry.weights).stat().st_size
        assert size < 5 * 2**20
        assert trained_texture(entry) in ("shapes", "fashion-mnist")


def test_documented_quality_and_sigma_delta_tolerance(shipped):
    name, ann, sigma_delta = shipped
    limits, metric = TOLERANCES[name], ("miou" if name == "seg-synth" else "map50")
    assert ann[metric] >= limits["ann_floor"]
    assert abs(sigma_delta[metric] - ann[metric]) * 100 <= limits["delta_pt"]
    assert ann["dense_macs"] == sigma_delta["dense_macs"] and ann["frames"] == CLIPS * FRAMES
    if "max_activity" in limits:
        assert sigma_delta["activity"] <= limits["max_activity"]


# --- data -------------------------------------------------------------------------------------------


def test_texture_choice_falls_back_to_shapes_and_uses_fashion_mnist_when_present(monkeypatch):
    assert texture_source("shapes") == (shaded_texture, "shapes")
    monkeypatch.delattr(spikestream.data, "load_fashion_mnist", raising=False)
    assert texture_source("auto")[1] == "shapes"
    with pytest.raises(synthetic_tasks.SyntheticTaskError, match="dataset-fashion-mnist"):
        texture_source("fashion-mnist")

    items = np.zeros((3, 28, 28), np.uint8)
    items[:, 8:20, 8:20] = 255  # a bright square item on black
    monkeypatch.setattr(spikestream.data, "load_fashion_mnist", lambda split: (items, np.arange(3)), raising=False)
    provider, name = texture_source("auto", "test")
    assert name == "fashion-mnist"
    patch = provider(np.random.default_rng(0), 14)
    assert patch.shape == (14, 14) and patch.min() >= 0 and patch.max() <= 1 and patch.std() > 0.05
    clip = task_clip(3, 4, provider)
    assert clip.frames.shape == (4, 64, 64)


def test_train_and_heldout_clips_differ_and_labels_follow_instances():
    train, heldout = task_clips("train", 1, 3)[0], task_clips("heldout", 1, 3)[0]
    assert not np.array_equal(train.frames, heldout.frames)
    labels = semantic_labels(train)
    assert np.array_equal(labels > 0, train.masks)
    for n in range(len(train)):
        for j, label in zip(train.object_ids[n], train.labels[n], strict=True):
            assert np.all(labels[n][train.instances[n] == j + 1] == label + 1)


def test_centre_targets_decode_back_to_the_boxes():
    clip = task_clip(11, 6)
    truth, decoded = [], []
    for boxes, labels in zip(clip.boxes, clip.labels, strict=True):
        heatmap, regression, _ = centre_targets(boxes, labels)
        logits = np.log(np.clip(heatmap, 1e-6, 1 - 1e-6) / (1 - np.clip(heatmap, 1e-6, 1 - 1e-6)))
        frame = decode_detections(np.concatenate([logits, regression]))
        truth.append(FrameBoxes(boxes, labels))
        decoded.append(frame)
    # boxes whose centres share a cell, or whose Gaussians merge, may be lost; the rest decode exactly
    assert mean_average_precision(decoded, truth) >= 0.9
    first = decoded[0]
    matched = [np.abs(first.boxes - box).max(axis=1).min() for box in clip.boxes[0]]
    assert min(matched) < 1e-4


# --- sigma-delta simulation and training --------------------------------------------------------------


class SkipNet(nn.Module):
    """Conv, pool, transposed conv and an additive skip: every layer kind the zoo models use."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(5)
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.head = nn.Conv2d(4, 2, 1)

    def forward(self, x):
        skip = torch.relu(self.conv1(x))
        deep = torch.relu(self.conv2(self.pool(skip)))
        return self.head(torch.relu(self.up(deep)) + skip)


def test_sigma_delta_simulation_matches_the_engine():
    model = SkipNet().eval()
    clip = task_clip(2, 6)
    frames = torch.from_numpy(clip.frames[:, :16, :16].astype(np.float32) / 255)[:, None, None]  # (N, 1, 1, 16, 16)
    graph = to_sigma_delta(from_torch(model, (1, 16, 16)), 0.05, input_threshold=0.08)
    stream = Stream(graph, "sigma-delta")
    with torch.no_grad(), SigmaDeltaSimulation(model, 0.05, input_threshold=0.08) as simulation:
        for frame in frames:
            output, rate = simulation.step(frame)
            expected = stream.process(frame[0])
            np.testing.assert_allclose(output[0].numpy(), expected, atol=1e-5)
            assert rate.item() >= 0
    # the rate proxy bounds the cost-weighted event count: each event carries |y| >= θ
    assert stream.trace.totals()["synops"] > 0


def test_one_batch_training_smoke_run_is_reproducible(tmp_path):
    recipe = SyntheticRecipe(clips=2, frames=4, epochs=1, batch_size=8, fine_tune_epochs=1, fine_tune_frames=2,
                             fine_tune_batch_size=2, heldout_clips=1, heldout_frames=3)
    runs = [synthetic_tasks.train_det_synth(tmp_path / f"det{i}.safetensors", texture="shapes", recipe=recipe)
            for i in range(2)]
    metrics = runs[0]
    assert metrics["texture"] == "shapes" and len(metrics["loss"]) == 1
    assert np.isfinite(metrics["sigma_delta_fine_tune"][0]["task_loss"])
    assert set(metrics["ann"]) >= {"map50", "synops", "dense_macs"} and metrics["before_fine_tune"]
    first, second = (load_file(str(tmp_path / f"det{i}.safetensors")) for i in range(2))
    assert all(torch.equal(first[name], second[name]) for name in first)
    load_weights(synthetic_tasks.DetSynth(), tmp_path / "det0.safetensors")


def test_recipe_defaults_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        synthetic_tasks.SEG_RECIPE.epochs = 1  # type: ignore[misc]
    assert len(SHAPES) + 1 == synthetic_tasks.NUM_SEG_CLASSES
