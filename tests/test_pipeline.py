"""Pipelined streaming (two stages on two threads) against one frame at a time: bit for bit the same."""

import numpy as np
import pytest
import torch

from _sparse_networks import EncoderDecoder, SegmentationLike
from spikestream.data import moving_objects_clip
from spikestream.engine import PLANNING_FRAMES, PROFILE_FRAMES, KeyframePolicy, Stream
from spikestream.engine._pipeline import balanced_cut
from spikestream.errors import InputError
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta


@pytest.fixture(scope="module", params=[EncoderDecoder, SegmentationLike])
def graph(request):
    return to_sigma_delta(from_torch(request.param().eval(), (1, 48, 64)), threshold=0.03)


@pytest.fixture(scope="module")
def clip():
    return moving_objects_clip(frames=40, height=48, width=64, objects=3, seed=7).frames


@pytest.fixture(scope="module")
def long_clip():
    return moving_objects_clip(frames=PLANNING_FRAMES + 20, height=48, width=64, objects=3, seed=8).frames


def stream(graph, **options):
    return Stream(graph, "sigma-delta", backend="sparse", calibrate=False, **options)


def one_at_a_time(graph, frames):
    reference = stream(graph)
    return np.stack([reference.process(f) for f in frames]), reference


def assert_same_trace(a, b):
    np.testing.assert_array_equal(a.trace.events, b.trace.events)
    np.testing.assert_array_equal(a.trace.synops, b.trace.synops)


def test_pipelined_stream_gives_the_same_outputs_and_trace_bit_for_bit(graph, long_clip):
    expected, reference = one_at_a_time(graph, long_clip)
    pipelined = stream(graph, pipeline=True)
    outputs = np.stack(list(pipelined(long_clip)))
    plan = pipelined.pipeline_plan
    assert plan is not None and len(pipelined.backend.stages) == 2
    assert 2 <= len(plan.trials) <= 4 and plan.after == min(plan.trials, key=plan.trials.get)  # fastest tried
    assert pipelined.backend.stages[0][-1] == plan.after
    np.testing.assert_array_equal(outputs, expected)
    assert_same_trace(pipelined, reference)
    assert pipelined.frame_index == len(long_clip)
    # the cut persists across a reset; the next pass is pipelined from its first frame
    pipelined.reset(clear_trace=True)
    np.testing.assert_array_equal(np.stack(list(pipelined(long_clip))), expected)
    assert_same_trace(pipelined, reference)


def test_every_split_point_gives_the_same_steps(graph, clip):
    expected, _ = one_at_a_time(graph, clip[:12])
    points = stream(graph).backend.split_points()
    assert len(points) >= 3
    for point in points:
        split = stream(graph)
        outputs = []
        for index, frame in enumerate(clip[:12]):
            if index == 4:
                split.backend.split(point)  # mid-stream: the mirrors start from the current state
            outputs.append(split.process(frame))
        np.testing.assert_array_equal(np.stack(outputs), expected, err_msg=f"split after {point}")


def test_a_cut_inside_a_fused_chain_or_at_the_input_is_refused():
    graph = to_sigma_delta(from_torch(SegmentationLike().eval(), (1, 48, 64)), threshold=0.03)
    backend = stream(graph).backend
    points = backend.split_points()
    chain_inner = [m.name for chain in backend._chains.values() for m in chain[:-1]]
    assert chain_inner and not set(chain_inner) & set(points)
    assert "x" not in points and backend.output_name not in points
    with pytest.raises(InputError, match="cannot split the graph after 'x'; possible points: "):
        backend.split("x")


def test_an_error_in_a_frame_is_raised_in_order_and_the_stages_stay_in_step(clip):
    graph = to_sigma_delta(from_torch(SegmentationLike().eval(), (1, 48, 64)), threshold=0.03)
    bad = 20
    frames = [*clip[:bad], clip[0][:10], *clip[bad:]]  # a frame of the wrong size
    pipelined = stream(graph, pipeline=True)
    received = []
    with pytest.raises(InputError, match="does not fit the model input"):
        for output in pipelined(frames):
            received.append(output)
    expected, reference = one_at_a_time(graph, clip)
    np.testing.assert_array_equal(np.stack(received), expected[:bad])
    # both stages stopped at the same frame: the stream goes on exactly as the reference
    np.testing.assert_array_equal(np.stack(list(pipelined(clip[bad:]))), expected[bad:])
    assert_same_trace(pipelined, reference)


def test_stopping_early_finishes_the_frames_already_in_flight(clip):
    graph = to_sigma_delta(from_torch(EncoderDecoder().eval(), (1, 48, 64)), threshold=0.03)
    pipelined = stream(graph, pipeline=True)
    for index, _ in enumerate(pipelined(clip)):
        if index == PROFILE_FRAMES + 5:
            break
    done = pipelined.frame_index
    assert PROFILE_FRAMES + 6 <= done < len(clip)  # the frames the first stage had taken were finished
    assert pipelined.trace.frames == done
    expected, _ = one_at_a_time(graph, clip)
    np.testing.assert_array_equal(np.stack([pipelined.process(f) for f in clip[done:]]), expected[done:])


def test_what_cannot_be_pipelined_runs_one_frame_at_a_time(clip):
    graph = to_sigma_delta(from_torch(SegmentationLike().eval(), (1, 48, 64)), threshold=0.03)
    for options in ({"mask": lambda index, frame: np.ones((48, 64))},  # may depend on the last output
                    {"keyframe": KeyframePolicy(4, refresh=True)}):  # resets every stage on a keyframe
        reference = stream(graph, **options)
        expected = np.stack([reference.process(f) for f in clip[:12]])
        candidate = stream(graph, pipeline=True, **options)
        np.testing.assert_array_equal(np.stack(list(candidate(clip[:12]))), expected)
        assert candidate.pipeline_plan is None
    dense = Stream(graph, "sigma-delta", backend="dense", pipeline=True)
    list(dense(clip[:12]))
    assert dense.pipeline_plan is None


def test_iteration_leaves_torch_threads_and_grad_mode_as_they_were(clip):
    graph = to_sigma_delta(from_torch(EncoderDecoder().eval(), (1, 48, 64)), threshold=0.03)
    threads = torch.get_num_threads()
    pipelined = stream(graph, pipeline=True)
    for _ in pipelined(clip):
        assert torch.is_grad_enabled()  # the consumer's own code between outputs
    assert torch.get_num_threads() == threads


def test_the_cut_balances_the_measured_stage_times():
    graph = to_sigma_delta(from_torch(SegmentationLike().eval(), (1, 48, 64)), threshold=0.03)
    backend = stream(graph).backend
    points = backend.split_points()
    order = list(backend.runs)
    seconds = dict.fromkeys(order, 0.0)
    seconds[order[-2]] = 3.0  # the heaviest node last: it must be alone with the output in the second stage
    plan = balanced_cut(backend, seconds, {"prepare": 1.0}, [], frames=1)
    assert plan.after in points and order.index(plan.after) < len(order) - 2
    assert plan.stage_ms == pytest.approx((1000.0, 3000.0)) and plan.serial_ms == pytest.approx(4000.0)
    seconds = dict.fromkeys(order, 1.0)  # even nodes: the cut nearest the middle of the order
    plan = balanced_cut(backend, seconds, {}, [], frames=1)
    first = order.index(plan.after) + 1
    assert max(first, len(order) - first) == min(max(order.index(p) + 1, len(order) - order.index(p) - 1)
                                                 for p in points)
