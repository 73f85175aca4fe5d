"""seg-motion: the MOG2 teacher and its cleaning, the motion input pipeline, the shipped weights on vtest.avi."""

import numpy as np
import pytest
import torch

from spikestream import Stream, from_torch
from spikestream.data import SampleDataError, find_sample_video, moving_objects_clip, read_frames
from spikestream.models import MODELS, WEIGHTS_DIR, load_weights
from spikestream.models import seg_motion as sm
from spikestream.passes import to_sigma_delta

# Shipped weights on every 10th test frame of vtest.avi (600, 610, ..., 790): documented values, with slack
# for float differences between machines. SHIPPED_IOU is the IoU on all 195 test frames.
SPOT_FRAMES = range(sm.TEST_FRAMES.start, sm.TEST_FRAMES.stop, 10)
IOU_TOLERANCE = 0.02  # dataset IoU on SPOT_FRAMES may sit this far below SHIPPED_IOU
SIGMA_DELTA_THETA = 0.05  # the demo's θ
MIN_AGREEMENT_WITH_ANN = 0.95  # IoU of the sigma-delta masks with the ANN masks at that θ


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small per-frame tensor ops run faster on one thread, and much faster on a loaded machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_clean_teacher_mask_drops_shadows_and_specks():
    raw = np.zeros((96, 128), np.uint8)
    raw[20:60, 30:50] = 255  # a person
    raw[60:70, 30:70] = 127  # their shadow
    raw[5, 5] = raw[80, 100] = raw[81, 101] = 255  # sensor specks
    raw[90, :] = 255  # a one-pixel line (the flickering overhead wire)
    clean = sm.clean_teacher_mask(raw, sm.TeacherConfig(size=(64, 48)))
    assert clean.shape == (48, 64) and clean.dtype == bool
    expected = np.zeros((48, 64), bool)
    expected[10:30, 15:25] = True  # the person, halved
    assert sm.mask_iou(clean, expected) > 0.9
    assert not clean[30:35].any() and not clean[40:].any()  # no shadow, no specks, no wire
    same_size = sm.clean_teacher_mask(raw, sm.TeacherConfig(size=(128, 96)))
    assert same_size[20:60, 30:50].mean() > 0.95 and not same_size[60:].any()


def test_teacher_finds_a_moving_object_on_a_static_scene():
    rng = np.random.default_rng(0)
    scene = rng.integers(60, 120, (96, 128)).astype(np.float32)
    frames, truth = [], []
    for t in range(60):
        frame, mask = scene.copy(), np.zeros((96, 128), bool)
        if t >= 30:  # a bright object walks in once the background is learnt
            mask[40:64, 10 + 2 * t - 60:22 + 2 * t - 60] = True
            frame[mask] = 220
        frames.append(np.clip(frame + rng.normal(0, 2, frame.shape), 0, 255).astype(np.uint8))
        truth.append(mask)
    masks = np.stack(list(sm.run_teacher(frames, sm.TeacherConfig(opening=3, size=(128, 96)))))
    assert not masks[10:30].any()  # a static scene is background
    assert sm.mask_iou(masks[32:], np.stack(truth[32:])) > 0.8


def test_motion_inputs_hold_the_frame_and_its_difference_to_the_background():
    clip = moving_objects_clip(frames=40, height=48, width=64, objects=2, seed=1)
    inputs = np.stack(list(sm.motion_inputs(iter(clip.frames))))
    assert inputs.shape == (40, 2, 48, 64) and inputs.dtype == np.float32
    np.testing.assert_allclose(inputs[:, 0], clip.frames / 255.0, atol=1e-6)
    assert not inputs[0, 1].any()  # the background starts as the first frame
    # the background (frame − difference) moves by at most the step size per frame
    background = inputs[:, 0] - inputs[:, 1]
    steps = [max(sm.BACKGROUND_STEP, sm.BACKGROUND_START_STEP / (1 + t / sm.BACKGROUND_START_FRAMES))
             for t in range(40)]
    assert all(np.abs(background[t + 1] - background[t]).max() <= steps[t] + 1e-6 for t in range(39))
    # a static scene: the difference decays to nothing
    static = np.stack(list(sm.motion_inputs([clip.frames[0]] * 5 + [clip.frames[1]] * 80)))
    assert np.abs(static[-1, 1]).max() < 1e-6


def test_model_is_registered_with_its_preprocessor():
    entry = MODELS["seg-motion"]
    assert entry.task == "segmentation" and entry.input_shape == (2, 288, 384)
    assert entry.preprocess is sm.motion_inputs and entry.train is sm.train
    graph = from_torch(sm.MotionSegmenter().eval(), entry.input_shape)
    assert graph.output_shape == (1, 288, 384)
    assert len(graph.synaptic_layers()) == 7


def test_one_batch_training_smoke(tmp_path, monkeypatch):
    monkeypatch.setattr(sm, "TRAIN_FRAMES", range(0, 40))  # a short clip stands in for vtest.avi
    monkeypatch.setattr(sm, "TEST_FRAMES", range(40, 50))
    monkeypatch.setattr(sm, "WARMUP_FRAMES", 5)
    clip = moving_objects_clip(frames=50, height=48, width=64, objects=2, seed=0)
    monkeypatch.setattr(sm, "teacher_masks", lambda video=None: clip.masks)
    monkeypatch.setattr(sm, "video_inputs", lambda video=None, frames=None, dtype=np.float32:
                        np.stack(list(sm.motion_inputs(iter(clip.frames)))).astype(dtype))
    metrics = sm.train(tmp_path / "w.safetensors", seed=0, config=sm.SegMotionTraining(crop=(32, 32)), max_steps=1)
    assert 0 <= metrics["iou_vs_teacher"] <= 1 and np.isfinite(metrics["final_loss"])
    load_weights(sm.MotionSegmenter(), tmp_path / "w.safetensors")


@pytest.fixture(scope="module")
def vtest():
    """Model inputs and teacher masks of vtest.avi's SPOT_FRAMES (the background estimate sees every frame)."""
    try:
        path = find_sample_video(sm.VIDEO)
    except SampleDataError as error:
        pytest.skip(f"vtest.avi cannot be had: {error}")
    gray = (f.image for f in read_frames(path, size=sm.INPUT_SIZE, max_frames=SPOT_FRAMES[-1] + 1))
    inputs = np.stack([x for index, x in enumerate(sm.motion_inputs(gray)) if index in SPOT_FRAMES])
    return inputs, sm.teacher_masks(path)[list(SPOT_FRAMES)]


def test_shipped_weights_reach_the_documented_iou(vtest):
    path = WEIGHTS_DIR / MODELS["seg-motion"].weights
    assert path.stat().st_size < 5_000_000
    model = load_weights(sm.MotionSegmenter(), path).eval()  # safetensors, strict
    inputs, teacher = vtest
    iou = sm.mask_iou(sm.foreground(sm.predict(model, inputs)[:, 0]), teacher)
    assert iou >= sm.SHIPPED_IOU - IOU_TOLERANCE, iou


def test_sigma_delta_network_follows_the_ann_on_video(vtest):
    torch.manual_seed(0)
    entry = MODELS["seg-motion"]
    module = entry.build()
    inputs, _ = vtest
    stream = Stream(to_sigma_delta(from_torch(module, entry.input_shape), threshold=SIGMA_DELTA_THETA))
    snn = sm.foreground(np.stack([stream.process(x)[0] for x in inputs]))
    ann = sm.foreground(sm.predict(module, inputs)[:, 0])
    assert sm.mask_iou(snn, ann) >= MIN_AGREEMENT_WITH_ANN
    assert stream.trace.totals()["activity"] < 1.0


def test_run_applies_the_preprocessor_to_any_video(tmp_path):
    from spikestream.data import write_video
    from spikestream.jobs import RunOptions, run_video

    clip = moving_objects_clip(frames=4, height=120, width=160, objects=2, seed=2)
    colour = np.repeat(clip.frames[..., None], 3, axis=-1)  # an RGB video of another size
    video = write_video(tmp_path / "clip.mp4", colour, fps=10)
    report = run_video(str(video), "seg-motion", tmp_path / "out", RunOptions(frames=3))
    assert report["frames"] == 3 and report["model"] == "seg-motion"
    assert report["layers"][0]["dense_macs"] == 3 * 8 * 2 * 9 * 144 * 192  # two input channels at 384x288
