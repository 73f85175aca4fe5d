"""The FPGA PE-array simulator against a hand-computed trace, and its device limits."""

import numpy as np
import pytest

from spikestream.config import load_fpga_preset
from spikestream.engine import LayerCount, Trace
from spikestream.errors import InputError
from spikestream.hw import LayerGeometry, TargetError, max_processing_elements, simulate

CONV = LayerGeometry("conv", "Conv2d", (1, 4, 4), (4, 4, 4), kernel=(3, 3), stride=(1, 1), padding=(1, 1),
                     weights=36, nonzero_weights=36, graded_input=True)
CHANNEL_WORK = [[8, 2, 6, 0], [1, 1, 1, 9]]  # two frames, four output channels


def hand_trace() -> Trace:
    trace = Trace(["conv"], ["Conv2d"], [36 * 16], tile=(2, 2),
                  metadata={"encoding": "sigma-delta", "steps": 1, "geometry": [CONV.to_dict()]})
    for work in CHANNEL_WORK:
        total = sum(work)
        trace.append([LayerCount(3, total, np.array(work), np.array([total]), np.full((2, 2), total / 4))])
    return trace


def test_static_schedule_matches_hand_count(tmp_path):
    trace = Trace.load(hand_trace().save(tmp_path / "t.npz"))  # also through save/load
    result = simulate(trace, "fpga", "static", device="XC7Z035", processing_elements=2, units="channel",
                      neuron_update="all")
    fpga = load_fpga_preset()
    pe, device = fpga.pe, fpga.device("XC7Z035")
    # static: PE0 gets channels 0-1, PE1 channels 2-3 -> loads (10, 6) and (2, 10): 10 cycles each frame
    neuron = int(np.ceil(64 * 1 / (2 * pe.neuron_lanes)))  # 4x4x4 neurons, one step, striped over 2 PEs
    cycles = 10 + neuron + pe.pipeline_cycles + pe.layer_setup_cycles
    assert result.details["mean_cycles_per_frame"] == cycles
    frame_time = cycles / (device.clock_mhz * 1e6)
    assert result.latency_s == pytest.approx(frame_time)
    assert result.fps == pytest.approx(1 / frame_time)
    assert result.balance_ratio == pytest.approx((8 + 6) / (10 + 10))  # Σ mean / Σ max over frames
    busy = np.mean([16, 12]) + neuron * 2  # synaptic work + neuron-update pass on both PEs
    dram_bits = 16 * 8  # the 4x4 input frame, 8 bits per pixel, from DDR
    energy = (device.static_power_w * frame_time + busy * device.pe_dynamic_power_w / (device.clock_mhz * 1e6)
              + dram_bits * device.dram_pj_per_bit * 1e-12)
    assert result.energy_j_per_frame == pytest.approx(energy)
    assert result.edp == pytest.approx(energy * frame_time)
    assert sum(result.energy_breakdown.values()) == pytest.approx(energy)
    np.testing.assert_allclose(result.pe_loads["conv"], [[10, 6], [2, 10]])


def test_kwbs_remaps_after_the_keyframe_and_pays_for_moving_units():
    result = simulate(hand_trace(), "fpga", "kwbs", {"every": 1}, processing_elements=2, units="channel",
                      neuron_update="all")
    pe = load_fpga_preset().pe
    # frame 1 runs the LPT mapping of frame 0's work (8, 2, 6, 0): {0, 3} on PE0, {1, 2} on PE1 -> (10, 2);
    # channels 1 and 3 moved: 9 weights x 8 bit + 16 potentials x 16 bit each, over 2 PEs x 64-bit ports
    np.testing.assert_allclose(result.pe_loads["conv"], [[10, 6], [10, 2]])
    remap = int(np.ceil(2 * (9 * pe.weight_bits + 16 * pe.state_bits) / (2 * pe.bram_port_bits)))
    base = 10 + 8 + pe.pipeline_cycles + pe.layer_setup_cycles
    assert result.details["mean_cycles_per_frame"] == pytest.approx((base + base + remap) / 2)
    assert result.details["layers"][0]["remaps"] == 1


def test_adaptive_kwbs_steals_pay_their_copying_inside_the_loads_once():
    trace = Trace(["conv"], ["Conv2d"], [36 * 16], tile=(2, 2),
                  metadata={"encoding": "sigma-delta", "steps": 1, "geometry": [CONV.to_dict()]})
    for work in ([80, 20, 60, 40], [90, 90, 10, 10]):
        total = sum(work)
        trace.append([LayerCount(3, total, np.array(work), np.array([total]), np.full((2, 2), total / 4))])
    result = simulate(trace, "fpga", "adaptive-kwbs", {"every": 100}, processing_elements=2, units="channel",
                      neuron_update="all")
    pe = load_fpga_preset().pe
    receive = (9 * pe.weight_bits + 16 * pe.state_bits) / pe.bram_port_bits  # one channel over one port
    # frame 0: static mapping, nothing predicted yet -> (100, 100); its LPT mapping is the same, nothing moves.
    # frame 1, predicted (80, 20, 60, 40): PE1 runs channels 2, 3 (10 + 10), is idle at 20 and steals
    # channel 1 from PE0 (predicted left 20 + 60 > receive + 20): it ends at 20 + receive + 90; PE0 at 90
    np.testing.assert_allclose(result.pe_loads["conv"], [[100, 100], [90, 20 + receive + 90]])
    neuron = int(np.ceil(64 / (2 * pe.neuron_lanes)))
    overhead = neuron + pe.pipeline_cycles + pe.layer_setup_cycles
    assert result.details["mean_cycles_per_frame"] == pytest.approx((100 + np.ceil(110 + receive)) / 2 + overhead)
    layer = result.details["layers"][0]
    assert layer["steals"] == 1 and layer["remap_cycles"] == 0 and layer["remaps"] == 0
    keyed = simulate(trace, "fpga", "kwbs", {"every": 100}, processing_elements=2, units="channel",
                     neuron_update="all")
    assert keyed.details["mean_cycles_per_frame"] == (100 + 180) / 2 + overhead  # PE0 keeps both heavy channels


def test_event_driven_neuron_updates_belong_to_the_unit_owner():
    result = simulate(hand_trace(), "fpga", "static", processing_elements=2, units="channel")
    pe = load_fpga_preset().pe
    # each channel owns 16 neurons; its w arrivals touch at most min(16, w) = w of them: cost w·(1 + 1/lanes)
    scale = 1 + 1 / pe.neuron_lanes
    np.testing.assert_allclose(result.pe_loads["conv"], np.array([[10, 6], [2, 10]]) * scale)
    assert result.details["mean_cycles_per_frame"] == np.ceil(10 * scale) + pe.pipeline_cycles + pe.layer_setup_cycles


def test_ideal_bound_is_fastest_and_units_follow_the_option():
    trace = hand_trace()
    fps = {name: simulate(trace, "fpga", name, processing_elements=2, units="channel").fps
           for name in ("static", "round-robin", "kwbs", "adaptive-kwbs", "oracle", "ideal")}
    assert max(fps.values()) == fps["ideal"]
    tiles = simulate(trace, "fpga", "static", processing_elements=2, units="tile")
    assert tiles.details["layers"][0]["units"] == "tile" and tiles.details["layers"][0]["unit_count"] == 4


def test_devices_limit_the_number_of_pes():
    fpga = load_fpga_preset()
    most, resource = max_processing_elements(fpga.device("XC7Z020"), fpga.pe)
    assert 8 <= most < 100 and resource == "BRAM36"
    with pytest.raises(TargetError, match=rf"at most {most} \(limited by BRAM36\)"):
        simulate(hand_trace(), "fpga", "static", device="XC7Z020", processing_elements=most + 1)
    with pytest.raises(InputError, match="unknown FPGA device 'XC9'"):
        simulate(hand_trace(), "fpga", device="XC9")
    for name in ("XC7Z020", "XC7Z035", "XCVU13P"):
        device = fpga.device(name)
        assert device.luts > 0 and device.bram_36kb > 0 and device.dsp_slices > 0 and device.clock_mhz > 0


def test_a_trace_without_geometry_is_priced_with_an_estimate():
    trace = hand_trace()
    del trace.metadata["geometry"]
    result = simulate(trace, "fpga", "static", processing_elements=2, units="channel")
    assert result.details["geometry_exact"] is False and result.fps > 0
