"""Encoders: exact codes (radix, latency, frame-delta), statistics of the rate code, the registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spikestream.encoding import (
    ENCODINGS,
    Encoding,
    FrameDelta,
    Latency,
    Radix,
    Rate,
    latency_spike_times,
    make_encoding,
    radix_bit_planes,
    radix_decode,
    radix_encode,
    radix_quantize,
    register_encoding,
)

SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)
UNIT_FLOATS = st.floats(0.0, 1.0, width=32)


@st.composite
def integers_and_bits(draw) -> tuple[np.ndarray, int]:
    bits = draw(st.integers(1, 12))
    q = draw(hnp.arrays(np.int64, SHAPES, elements=st.integers(0, 2**bits - 1)))
    return q, bits


# --- the contract every registered encoder keeps ----------------------------------------------------


def _tensors(state) -> list[torch.Tensor]:
    return [t for t in state if isinstance(t, torch.Tensor)] if isinstance(state, tuple) else []


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_every_encoding_keeps_the_interface(name):
    encoding = make_encoding(name)
    x = torch.rand(2, 5, 7, generator=torch.Generator().manual_seed(1))
    state = encoding.init_state(tuple(x.shape))
    before = [t.clone() for t in _tensors(state)]
    inputs, _ = encoding.encode(x, state)
    assert inputs.shape == (encoding.steps, *x.shape) and inputs.dtype == torch.float32
    assert encoding.decode(inputs).shape == x.shape
    assert isinstance(encoding.reset_each_frame, bool) and encoding.name == name
    # encode leaves the state it was given untouched, so the same call gives the same inputs
    again, _ = encoding.encode(x, state)
    assert torch.equal(inputs, again)
    assert all(torch.equal(old, new) for old, new in zip(before, _tensors(state), strict=True))
    # inputs are a fresh tensor: gating them in place must not touch the caller's frame
    inputs.zero_()
    assert x.abs().sum() > 0


@pytest.mark.parametrize(("name", "steps", "reset_each_frame"), [
    ("direct", 1, True), ("rate", 8, True), ("radix", 4, True), ("latency", 8, True),
    ("frame-delta", 1, False), ("sigma-delta", 1, False),
])
def test_defaults_match_the_design(name, steps, reset_each_frame):
    encoding = make_encoding(name)
    assert (encoding.steps, encoding.reset_each_frame) == (steps, reset_each_frame)


def test_direct_repeats_the_analog_frame_and_reads_out_the_mean():
    x = torch.rand(3, 4, 4)
    encoding = make_encoding("direct", steps=3)
    inputs, _ = encoding.encode(x, encoding.init_state(tuple(x.shape)))
    assert all(torch.equal(step, x) for step in inputs)
    assert torch.allclose(encoding.decode(inputs), x)


def test_sigma_delta_passes_the_analog_frame_and_reads_out_the_single_step():
    x = torch.rand(1, 4, 4)
    encoding = make_encoding("sigma-delta")
    inputs, state = encoding.encode(x, encoding.init_state(tuple(x.shape)))
    assert state is None and inputs.shape == (1, *x.shape) and torch.equal(inputs[0], x)
    assert torch.equal(encoding.decode(inputs), x)
    with pytest.raises(ValueError, match="one step per frame"):
        encoding.decode(torch.zeros(2, 1, 4, 4))


# --- radix ----------------------------------------------------------------------------------------


@given(integers_and_bits())
def test_radix_decode_inverts_the_bit_planes(q_and_bits):
    q, bits = q_and_bits
    planes = radix_bit_planes(torch.from_numpy(q), bits)
    assert planes.shape == (bits, *q.shape)
    assert set(planes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(radix_decode(planes), torch.from_numpy(q))


@given(integers_and_bits())
def test_radix_encode_of_the_level_values_gives_back_q(q_and_bits):
    q, bits = q_and_bits
    levels = 2**bits - 1
    x = torch.from_numpy(q).to(torch.float32) / levels  # the pixel values that quantize exactly to q
    assert torch.equal(radix_decode(radix_encode(x, bits)), torch.from_numpy(q))
    encoding = Radix(steps=bits)
    inputs, _ = encoding.encode(x, None)
    assert torch.allclose(encoding.decode(inputs), x, atol=1e-6)  # Σ 2^(T−1−t)·o_t / (2^T − 1)


def test_radix_sends_the_most_significant_bit_first():
    assert radix_bit_planes(torch.tensor(11), 4).tolist() == [1, 0, 1, 1]  # 11 = 0b1011
    assert radix_bit_planes(torch.tensor(1), 4).tolist() == [0, 0, 0, 1]
    assert radix_bit_planes(torch.tensor(6), 3).tolist() == [1, 1, 0]
    inputs, _ = Radix(steps=4).encode(torch.tensor([8 / 15]), None)  # q = 8 = 0b1000: only step 0 fires
    assert inputs[:, 0].tolist() == [1, 0, 0, 0]


def test_radix_quantization_rounds_half_up_and_clips():
    assert radix_quantize(torch.tensor([0.5]), 1).tolist() == [1]  # 0.5·1 = 0.5 → 1 (half to even: 0)
    assert radix_quantize(torch.tensor([0.5]), 2).tolist() == [2]  # 0.5·3 = 1.5 → 2
    assert radix_quantize(torch.tensor([1.5 / 15, 2.5 / 15]), 4).tolist() == [2, 3]
    assert radix_quantize(torch.tensor([-0.3, 0.0, 1.0, 1.7]), 3).tolist() == [0, 0, 7, 7]


@given(hnp.arrays(np.float32, SHAPES, elements=UNIT_FLOATS), st.integers(1, 12))
def test_radix_quantization_error_is_at_most_half_a_level(x, bits):
    levels = 2**bits - 1
    q = radix_quantize(torch.from_numpy(x), bits).numpy()
    assert np.all(np.abs(q / levels - x) <= 0.5 / levels + 1e-6)


def test_radix_rejects_bad_bit_widths_and_out_of_range_integers():
    with pytest.raises(ValueError, match="from 1 to 24"):
        radix_encode(torch.zeros(2), 0)
    with pytest.raises(ValueError, match=r"\[0, 7\] for 3 bits"):
        radix_bit_planes(torch.tensor([8]), 3)


# --- rate -----------------------------------------------------------------------------------------


def test_rate_spike_frequency_converges_to_the_intensity():
    steps = 4000
    x = torch.linspace(0, 1, 21)
    encoding = Rate(steps=steps, seed=7)
    spikes, _ = encoding.encode(x, encoding.init_state(tuple(x.shape)))
    frequency = encoding.decode(spikes)
    bound = 5 * torch.sqrt(x * (1 - x) / steps)  # five binomial standard deviations
    assert torch.all((frequency - x).abs() <= bound + 1e-9)
    assert frequency[0] == 0 and frequency[-1] == 1  # x = 0 never fires, x = 1 always fires


def _spike_stream(encoding: Rate, frames: list[torch.Tensor]) -> list[torch.Tensor]:
    state, out = encoding.init_state(tuple(frames[0].shape)), []
    for frame in frames:
        spikes, state = encoding.encode(frame, state)
        out.append(spikes)
    return out


def test_rate_is_reproducible_by_seed_and_frame_index():
    frames = [torch.full((4, 8, 8), 0.5)] * 3
    first = _spike_stream(Rate(seed=3), frames)
    second = _spike_stream(Rate(seed=3), frames)
    other_seed = _spike_stream(Rate(seed=4), frames)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other_seed, strict=True))
    assert not torch.equal(first[0], first[1])  # the stream moves on from frame to frame


# --- latency --------------------------------------------------------------------------------------


@given(hnp.arrays(np.float32, SHAPES, elements=UNIT_FLOATS), st.integers(1, 16))
def test_latency_fires_once_per_lit_pixel_and_brighter_fires_earlier(x, steps):
    x = torch.from_numpy(x)
    spikes, _ = Latency(steps=steps).encode(x, None)
    counts = spikes.sum(dim=0)
    assert torch.equal(counts, (x > 0).to(torch.float32))  # exactly one spike for x > 0, none for x = 0
    times = spikes.argmax(dim=0)
    lit = x > 0
    assert torch.equal(times[lit], latency_spike_times(x, steps)[lit])
    expected = torch.floor((1 - x[lit].double()) * (steps - 1) + 0.5).long()  # the documented rule
    assert torch.equal(times[lit], expected)
    order = torch.argsort(x[lit])  # ascending brightness → non-increasing spike time
    assert torch.all(torch.diff(times[lit][order]) <= 0)


def test_latency_extremes():
    spikes, _ = Latency(steps=8).encode(torch.tensor([1.0, 0.01, 0.0]), None)
    assert spikes[:, 0].argmax() == 0 and spikes[:, 1].argmax() == 7 and spikes[:, 2].sum() == 0


# --- frame-delta ----------------------------------------------------------------------------------


@settings(deadline=None)
@given(
    hnp.arrays(np.float32, st.tuples(st.integers(1, 12), st.integers(1, 5), st.integers(1, 5)),
               elements=UNIT_FLOATS),
    st.floats(0.001, 0.5),
)
def test_frame_delta_tracks_the_frames_within_threshold(frames, threshold):
    encoding = FrameDelta(threshold=threshold)
    state = encoding.init_state(frames.shape[1:])
    sent = torch.zeros(frames.shape[1:])
    for frame in torch.from_numpy(frames):
        previous = state.reconstruction
        inputs, state = encoding.encode(frame, state)
        deltas = encoding.decode(inputs)
        sent = sent + deltas
        assert torch.all((frame - state.reconstruction).abs() < threshold)  # |x − x̂| < θ on every step
        events = deltas != 0
        assert torch.all((frame - previous).abs()[events] >= threshold)  # only large enough changes are sent
    assert torch.equal(sent, state.reconstruction)  # the receiver's sum of events is the reconstruction


# --- registry and options -------------------------------------------------------------------------


def test_unknown_encoding_names_the_choices():
    with pytest.raises(ValueError) as error:
        make_encoding("x")
    assert str(error.value) == ("unknown encoding 'x'; choose one of: direct, frame-delta, latency, radix, "
                                "rate, sigma-delta")


@pytest.mark.parametrize(("name", "options", "message"), [
    ("rate", {"bits": 3}, "encoding 'rate' has no option 'bits'; its options are: steps, seed"),
    ("frame-delta", {"steps": 4}, "encoding 'frame-delta' fixes steps=1; its options are: threshold"),
    ("sigma-delta", {"threshold": 0.1}, "encoding 'sigma-delta' has no option 'threshold'; its options are: none"),
    ("radix", {"steps": 0}, "steps must be a positive integer, not 0"),
    ("latency", {"steps": 2.5}, "steps must be a positive integer, not 2.5"),
    ("direct", {"steps": True}, "steps must be a positive integer, not True"),
    ("radix", {"steps": 25}, "at most 24"),
    ("rate", {"seed": -1}, "seed must be a non-negative integer"),
    ("frame-delta", {"threshold": -0.1}, "threshold must be a finite number >= 0"),
    ("frame-delta", {"threshold": float("nan")}, "threshold must be a finite number >= 0"),
])
def test_bad_options_are_rejected_with_a_clear_message(name, options, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make_encoding(name, **options)


def test_options_reach_the_encoder_and_its_report_entry():
    encoding = make_encoding("frame-delta", threshold=0.1)
    assert encoding.threshold == 0.1
    assert encoding.as_dict() == {"name": "frame-delta", "steps": 1, "threshold": 0.1}
    with pytest.raises(dataclasses.FrozenInstanceError):
        encoding.threshold = 0.2


def test_the_registry_rejects_a_second_encoding_of_the_same_name():
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class AnotherRate(Encoding):
        steps: int = 1
        name = "rate"

        def encode(self, x, state):
            return x[None], state

    with pytest.raises(ValueError, match="registered twice"):
        register_encoding(AnotherRate)
    assert ENCODINGS["rate"] is Rate
