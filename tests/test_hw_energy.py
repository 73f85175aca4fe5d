"""Energy tables: every constant has a source; compute-only and memory-inclusive models; break-even."""

import numpy as np
import pytest

from spikestream.config import PresetError, load_energy_table, preset_constants, preset_names, read_preset
from spikestream.engine import LayerCount, Trace
from spikestream.hw import LayerGeometry, estimate_energy

GEOMETRY = [LayerGeometry("conv", "Conv2d", (2, 8, 8), (4, 8, 8), kernel=(3, 3), padding=(1, 1), weights=72,
                          nonzero_weights=72, graded_input=False),
            LayerGeometry("fc", "Linear", (256,), (10,), weights=2560, nonzero_weights=2560, graded_input=True)]
MACS = [72 * 64, 2560]


def trace_with(events, synops, steps=1) -> Trace:
    trace = Trace(["conv", "fc"], ["Conv2d", "Linear"], MACS,
                  metadata={"encoding": "sigma-delta", "steps": steps, "geometry": [g.to_dict() for g in GEOMETRY]})
    for e, s in zip(events, synops, strict=True):
        trace.append([LayerCount(e[0], s[0], np.zeros(4), np.zeros(2), np.zeros((1, 1))),
                      LayerCount(e[1], s[1], np.zeros(10), np.zeros(256), np.zeros((1, 1)))])
    return trace


def test_every_preset_constant_names_its_source():
    names = preset_names()
    assert {"energy-45nm", "fpga", "neuromorphic", "sensor"} <= set(names)
    for name in names:
        constants = preset_constants(name)
        assert constants, name
        for constant in constants:
            assert isinstance(constant.source, str) and len(constant.source.strip()) > 10, (name, constant.key)
            assert constant.unit, (name, constant.key)


def test_a_constant_without_a_source_is_rejected(tmp_path):
    missing = tmp_path / "missing.toml"
    missing.write_text('[compute]\nint8_add = { value = 0.03, unit = "pJ" }\n')
    with pytest.raises(PresetError, match=r"compute\.int8_add has no source"):
        read_preset(str(missing))
    bare = tmp_path / "bare.toml"
    bare.write_text("[compute]\nint8_add = 0.03\n")
    with pytest.raises(PresetError, match="bare number"):
        read_preset(str(bare))


def test_the_usual_proxy_numbers():
    table = load_energy_table()
    fp32, int8 = table.precision("fp32"), table.precision("int8")
    assert table.accumulate_pj(fp32) == pytest.approx(0.9) and table.mac_pj(fp32) == pytest.approx(4.6)
    assert table.accumulate_pj(int8) == pytest.approx(0.1) and table.mac_pj(int8) == pytest.approx(0.3)


def test_compute_only_proxy_prices_binary_synops_as_accumulates_and_graded_ones_as_macs():
    trace = trace_with(events=[[10, 5]], synops=[[360, 50]])
    estimate = estimate_energy(trace, "fp32")
    assert estimate.snn_compute_only_j == pytest.approx((360 * 0.9 + 50 * 4.6) * 1e-12)
    assert estimate.ann_compute_only_j == pytest.approx(sum(MACS) * 4.6e-12)
    binary_only = trace_with(events=[[10, 0]], synops=[[360, 0]])
    be = estimate_energy(binary_only, "fp32").break_even_activity_compute_only
    # a binary-spike SNN at activity a costs a·M·0.9 pJ against M·4.6 pJ (on this network with conv only)
    assert be == pytest.approx(binary_only.totals()["activity"] * (sum(MACS) * 4.6) / (360 * 0.9))


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_memory_inclusive_break_even_is_where_the_energies_meet(precision):
    trace = trace_with(events=[[40, 6], [20, 4]], synops=[[1440, 60], [720, 40]])
    estimate = estimate_energy(trace, precision)
    assert estimate.snn_memory.total > estimate.snn_compute_only_j  # memory traffic adds, never removes
    scale = estimate.break_even_activity_memory / estimate.activity
    scaled = trace_with(events=[[40 * scale, 6 * scale], [20 * scale, 4 * scale]],
                        synops=[[1440 * scale, 60 * scale], [720 * scale, 40 * scale]])
    at_break_even = estimate_energy(scaled, precision)
    # (the Trace stores integer counts: the scaled ones are rounded)
    assert at_break_even.snn_memory.total == pytest.approx(at_break_even.ann_memory.total, rel=1e-3)
    assert estimate.break_even_activity_memory < estimate.break_even_activity_compute_only
