"""In-sensor first layer: link bit streams against the closed form and a hand count, and layer checks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.config import bits_for, load_sensor
from spikestream.engine import LayerCount, Trace
from spikestream.hw import (
    LayerGeometry,
    TargetError,
    bandwidth_sweep,
    closed_form_bandwidth_reduction,
    decode_frame,
    encode_frame,
    format_bits,
    simulate,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.floats(0, 1), st.sampled_from(["bitmap", "aer",
                                                                                                  "auto"]))
def test_link_formats_round_trip_and_match_their_bit_counts(steps, channels, side, density, link_format):
    shape = (steps, channels, side, side)
    spikes = np.random.default_rng(steps * 7 + side).random(shape) < density
    bits = encode_frame(spikes, link_format, header_bits=64)
    np.testing.assert_array_equal(decode_frame(bits, shape, link_format, header_bits=64), spikes)
    neurons = channels * side * side
    assert len(bits) == format_bits(int(spikes.sum()), neurons, steps, link_format, 64)


def test_bandwidth_table_has_the_12x_and_96x_points_from_sent_bits():
    rows = bandwidth_sweep(64, 64, strides=(2, 4, 8), channels=(8, 16, 32), steps=(1, 2, 4), adc_bits=(8, 10, 12))
    for row in rows:  # dense bitmap, no header: the transmitted length equals the closed form exactly
        assert row["bandwidth_reduction"] == pytest.approx(row["closed_form"])
        s, c, t, b = row["stride"], row["channels"], row["steps"], row["adc_bits"]
        assert row["bandwidth_reduction"] == pytest.approx(s * s * b / (c * t))
    points = {(r["stride"], r["channels"], r["steps"], r["adc_bits"]): r["bandwidth_reduction"] for r in rows}
    assert points[(4, 16, 1, 12)] == pytest.approx(12)
    assert points[(8, 8, 1, 12)] == pytest.approx(96)
    assert closed_form_bandwidth_reduction(4, 16, 1, 12) == 12


def sensor_trace(spikes_per_frame, stride=2, channels=4, steps=2) -> Trace:
    first = LayerGeometry("pix", "Conv2d", (1, 8, 8), (channels, 8 // stride, 8 // stride), kernel=(stride, stride),
                          stride=(stride, stride), weights=channels * stride * stride,
                          nonzero_weights=channels * stride * stride, graded_input=True)
    neurons = first.neurons
    second = LayerGeometry("fc", "Linear", (neurons,), (3,), weights=3 * neurons, nonzero_weights=3 * neurons,
                           graded_input=False)
    trace = Trace(["pix", "fc"], ["Conv2d", "Linear"], [channels * stride * stride * neurons // channels, 3 * neurons],
                  tile=(2, 2), metadata={"encoding": "direct", "steps": steps,
                                         "geometry": [first.to_dict(), second.to_dict()]})
    for spikes in spikes_per_frame:
        trace.append([LayerCount(64 * steps, 64 * channels * steps, np.zeros(channels), np.zeros(1),
                                 np.zeros((2, 2))),
                      LayerCount(spikes, 3 * spikes, np.zeros(3), np.zeros(neurons), np.zeros((1, 1)))])
    return trace


def test_in_sensor_bandwidth_against_a_hand_count():
    sensor = load_sensor()
    trace = sensor_trace([5, 40])  # spikes leaving the sensor = input events of the next layer
    neurons, steps = 4 * 4 * 4, 2
    raw = 8 * 8 * 12 + 64  # 12-bit pixels and the CSI-2 frame header
    aer = [64 + bits_for(neurons * steps + 1) + n * (bits_for(neurons) + bits_for(steps)) for n in (5, 40)]
    bitmap = 64 + neurons * steps
    sent = np.mean([1 + min(bitmap, a) for a in aer])  # "auto": the shorter format and a flag bit
    result = simulate(trace, "sensor")
    assert result.details["raw_bits_per_frame"] == raw
    assert result.details["sent_bits_per_frame"] == pytest.approx(sent)
    assert result.details["bandwidth_reduction"] == pytest.approx(raw / sent)
    assert result.latency_s == pytest.approx(sent / sensor.link_bits_per_s)
    bitmap_only = simulate(trace, "sensor", link_format="bitmap")
    assert bitmap_only.details["sent_bits_per_frame"] == bitmap
    d = result.details
    assert d["energy_reduction"] == pytest.approx(d["conventional_j_per_frame"] / d["in_sensor_j_per_frame"])
    assert d["conventional_breakdown"]["rest_of_network"] == d["in_sensor_breakdown"]["rest_of_network"]


def test_only_a_non_overlapping_first_layer_can_go_into_the_pixels():
    trace = sensor_trace([5])
    geometry = trace.metadata["geometry"]
    geometry[0] = {**geometry[0], "kernel": [3, 3], "padding": [1, 1]}
    with pytest.raises(TargetError, match=r"kernel = stride and no padding: kernel 3x3 != stride 2x2 .*padding"):
        simulate(trace, "sensor")
    trace = sensor_trace([5])
    trace.metadata["geometry"][1]["graded_input"] = True
    with pytest.raises(TargetError, match="must emit binary spikes"):
        simulate(trace, "sensor")
