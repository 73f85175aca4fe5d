"""The neuromorphic target: partitioner limits and rejection messages, and a hand-computed energy."""

import numpy as np
import pytest

from spikestream.config import load_neuromorphic_chip
from spikestream.engine import LayerCount, Trace
from spikestream.hw import LayerGeometry, TargetError, partition, place_layer, simulate


def linear(name, inputs, outputs, graded=False) -> LayerGeometry:
    return LayerGeometry(name, "Linear", (inputs,), (outputs,), weights=inputs * outputs,
                         nonzero_weights=inputs * outputs, graded_input=graded)


def trace_of(geometry: list[LayerGeometry], events, synops, steps=2) -> Trace:
    trace = Trace([g.name for g in geometry], [g.kind for g in geometry], [g.weights for g in geometry],
                  metadata={"encoding": "rate", "steps": steps, "geometry": [g.to_dict() for g in geometry]})
    for e, s in zip(events, synops, strict=True):
        trace.append([LayerCount(ei, si, np.full(g.output_channels, si / g.output_channels),
                                 np.full(g.input_channels, si / g.input_channels), np.array([[si]]))
                      for g, ei, si in zip(geometry, e, s, strict=True)])
    return trace


def test_small_network_energy_matches_hand_count():
    chip = load_neuromorphic_chip("loihi")
    g = linear("fc", 10, 5)
    trace = trace_of([g], events=[[4], [6]], synops=[[20], [30]], steps=2)
    result = simulate(trace, "neuromorphic", chip="loihi")
    assert result.details["cores"] == 1
    synops, updates, messages = 25.0, 5 * 2, 5.0  # means per frame; input events each reach the one core
    core_ns = np.array([20, 30]) * chip.synop_ns + updates * chip.neuron_update_ns
    frame_s = (core_ns + 2 * chip.barrier_ns) * 1e-9
    io_s = np.array([4, 6]) * chip.event_bits / chip.io_bits_per_s
    frame_s = np.maximum(frame_s, io_s).mean()
    dynamic = (synops * chip.synop_pj + updates * chip.neuron_update_pj
               + messages * (chip.spike_pj + chip.mean_hops * chip.hop_pj)) * 1e-12
    assert result.energy_j_per_frame == pytest.approx(dynamic + chip.static_power_w * frame_s)
    assert result.fps == pytest.approx(1 / frame_s)
    assert result.latency_s == pytest.approx(frame_s)  # one layer: no pipeline depth
    assert result.edp == pytest.approx(result.energy_j_per_frame * result.latency_s)


def test_layers_are_cut_to_fit_the_core_limits():
    chip = load_neuromorphic_chip("loihi")
    placement = place_layer(linear("fc", 100, 3000), chip)
    assert placement.cores == 3 and placement.neurons_per_core <= chip.neurons_per_core
    conv = LayerGeometry("conv", "Conv2d", (8, 64, 64), (16, 64, 64), kernel=(3, 3), padding=(1, 1),
                         weights=16 * 8 * 9, nonzero_weights=16 * 8 * 9)
    placement = place_layer(conv, chip)
    needs = (placement.neurons_per_core, placement.synapse_bits_per_core, placement.fan_in_per_core)
    assert all(n <= limit for n, limit in zip(needs, (chip.neurons_per_core, chip.synapse_memory_bits,
                                                       chip.fan_in_per_core), strict=True))
    shared = place_layer(conv, load_neuromorphic_chip("loihi2"))
    assert shared.cores < placement.cores  # shared convolution weights and 8x the neurons per core


def test_a_layer_too_wide_for_a_core_is_rejected_with_its_limit():
    with pytest.raises(TargetError, match=r"layer 'fc' .* does not fit a loihi core .* input axons \(fan-in\) "
                                          r"5,000 > 4,096"):
        partition([linear("fc", 5000, 10)], load_neuromorphic_chip("loihi"))


def test_a_network_needing_more_cores_than_the_chips_have_is_rejected():
    chip = load_neuromorphic_chip("loihi")
    big = [linear("fc1", 800, 100_000), linear("fc2", 100_000 // 100, 10)]
    with pytest.raises(TargetError, match=r"the network needs [\d,]+ loihi cores but 1 chip\(s\) have 128 "
                                          r"\(largest layers: fc1: [\d,]+.*allow more chips"):
        partition(big, chip)
    assert sum(p.cores for p in partition(big, chip, chips=100)) > 128


def test_graded_events_need_a_chip_with_graded_spikes():
    layers = [linear("fc1", 10, 10, graded=True), linear("fc2", 10, 4, graded=True)]
    trace = trace_of(layers, events=[[3, 2]], synops=[[30, 8]], steps=1)
    with pytest.raises(TargetError, match=r"graded events .* loihi sends binary spikes only"):
        simulate(trace, "neuromorphic", chip="loihi")
    result = simulate(trace, "neuromorphic", chip="loihi2")
    assert result.details["cores"] == 2 and result.energy_j_per_frame > 0
    assert result.latency_s > 1 / result.fps  # two layers: one step of pipeline depth on top
