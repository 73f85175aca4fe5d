"""Stream: frame formats, state across frames, reset, keyframes and input masks."""

import numpy as np
import pytest
import torch

from spikestream import ir
from spikestream.engine import FrameShapeError, KeyframePolicy, Stream, as_frame
from spikestream.passes import to_sigma_delta


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(0)
    ann = ir.sequential((1, 12, 16), [
        ir.Conv2d("c1", weight=rng.standard_normal((3, 1, 3, 3)), bias=np.full(3, 0.1), padding=1), ir.ReLU("r1"),
        ir.Conv2d("c2", weight=rng.standard_normal((2, 3, 3, 3)), padding=1),
    ])
    return to_sigma_delta(ann, threshold=0.02)


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (12, 16))
    clip = [np.clip(base + rng.integers(-30, 30, (12, 16)) * (rng.random((12, 16)) < 0.2), 0, 255) for _ in range(6)]
    return np.stack(clip).astype(np.uint8)


def run(stream, frames):
    return np.stack([stream.process(f) for f in frames])


@pytest.mark.parametrize("convert", [
    lambda f: f,  # uint8 (H, W)
    lambda f: f[None],  # uint8 (C, H, W)
    lambda f: f[..., None],  # uint8 (H, W, C)
    lambda f: f.astype(np.float32) / 255,  # float (H, W)
    lambda f: torch.from_numpy(f),  # torch uint8
    lambda f: torch.from_numpy(f.astype(np.float64) / 255)[None],  # torch float64 (C, H, W)
    lambda f: np.repeat(f[..., None], 3, axis=2),  # grey colour frame (H, W, 3) → luma
])
def test_every_frame_format_gives_the_same_outputs(graph, frames, convert):
    reference = run(Stream(graph), frames)
    np.testing.assert_allclose(run(Stream(graph), [convert(f) for f in frames]), reference, atol=1e-5)


def test_wrong_shapes_are_refused_clearly(graph):
    with pytest.raises(FrameShapeError, match=r"frame of shape \(16, 12\) does not fit the model input \(1, 12, 16\)"):
        as_frame(np.zeros((16, 12), np.uint8), (1, 12, 16))
    with pytest.raises(FrameShapeError, match="NaN"):
        as_frame(np.full((12, 16), np.nan, np.float32), (1, 12, 16))


def test_state_persists_and_reset_replays(graph, frames):
    stream = Stream(graph)
    first = run(stream, frames)
    events_first = stream.trace.events.sum(1)
    assert events_first[1:].max() < events_first[0]  # after frame 0 only changes travel
    second = run(stream, frames)  # no reset: frame 0 is now a change from the last frame
    assert stream.trace.events.sum(1)[len(frames)] < events_first[0]
    stream.reset()
    third = run(stream, frames)
    np.testing.assert_array_equal(third, first)
    np.testing.assert_array_equal(stream.trace.events[-len(frames):], stream.trace.events[:len(frames)])
    assert np.abs(second - first).max() < 1.0


def test_keyframe_refresh_resends_the_whole_frame(graph, frames):
    marked = Stream(graph, keyframe=3)
    run(marked, frames)
    np.testing.assert_array_equal(marked.trace.keyframes, [True, False, False, True, False, False])
    refreshed = Stream(graph, keyframe=KeyframePolicy(every=3, refresh=True))
    run(refreshed, frames)
    fresh = Stream(graph)
    run(fresh, frames[3:])
    # after a refresh, frame 3 costs what a first frame costs
    np.testing.assert_array_equal(refreshed.trace.events[3], fresh.trace.events[0])
    assert refreshed.trace.events[3].sum() > marked.trace.events[3].sum()
    with pytest.raises(ValueError, match="positive integer"):
        KeyframePolicy(every=0)


def test_mask_holds_events_and_sends_the_residual_once(graph):
    still = np.zeros((12, 16), np.float32)
    moved = still.copy()
    moved[2:6, 2:6] = 1.0  # a change inside the masked region
    masked_region = np.ones((12, 16), bool)
    masked_region[:8, :8] = False  # False = masked (hold)
    schedule = {0: masked_region, 1: masked_region, 2: np.ones((12, 16), bool)}
    stream = Stream(graph, mask=lambda index, frame: schedule[index])
    input_node = graph.successors("input")[0]
    stream.process(still)
    stream.process(moved)  # masked: the change is held
    assert stream.trace.events[1, 0] == 0
    assert stream.state[input_node].reconstruction.abs().max() == 0
    stream.process(moved)  # unmasked: the accumulated change goes out once
    assert stream.trace.events[2, 0] == 16
    assert torch.equal(stream.state[input_node].reconstruction[0, 0], torch.from_numpy(moved))
    with pytest.raises(ValueError, match="no SigmaDelta node after its input"):
        Stream(ir.sequential((1, 4, 4), [ir.ReLU("r")]), mask=np.ones((4, 4), bool))
