"""The generated design, simulated with cocotb, against the integer reference; and the cycle model
against the measured cycles. The full fmnist-cnn run on 50+ images is in benchmarks/rtl.py."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from _rtl_networks import SMALL_PARALLEL, have_data, quantized_variant, small_cnn, small_images
from spikestream.rtl import calibrate_cycles, estimate, generate, latency_cycles, lower, parse_parallel, verify
from spikestream.rtl.dse import layer_cycles
from spikestream.rtl.verify import parse_toggle_coverage, stimulus_beats

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("yosys") is None,
                                  reason="Icarus Verilog and Yosys are needed (Debian packages iverilog, yosys)")
needs_data = pytest.mark.skipif(not have_data(), reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")


@needs_data
@needs_icarus
@pytest.mark.slow
def test_small_network_is_bit_exact_and_takes_the_modelled_cycles(tmp_path):
    """Padding, unused conv rows and columns, row segments, partial kernel-row groups, several channel
    groups and duplicated units, chained linear layers: every output of 3 real images equals the
    integer reference, and every cycle count equals the analytical model's."""
    _, quantized = small_cnn()
    plan = lower(quantized)
    parallelism = parse_parallel(SMALL_PARALLEL, plan)
    design = generate(plan, parallelism, pixels_per_beat=2)
    images = small_images("test", 3)
    result = verify(design, images, tmp_path, "icarus", timeout_s=900)
    assert result.bit_exact, f"outputs {result.outputs} differ from the reference {result.expected}"
    np.testing.assert_array_equal(result.outputs, result.expected)
    modelled = latency_cycles(plan, parallelism, 2)
    assert result.latency_cycles == [modelled] * 3
    per_layer = [layer_cycles(stage, parallelism.for_stage(stage), plan.bits) for stage in plan.stages]
    assert result.layer_cycles == [per_layer] * 3
    _, errors = calibrate_cycles([(plan, parallelism, 2, result.latency_cycles[0])])
    assert max(abs(e) for e in errors) < 1e-9
    assert estimate(plan, parallelism, 2).latency_cycles == modelled


@needs_data
@needs_icarus
@pytest.mark.slow
@pytest.mark.parametrize("network, parallel", [
    ("strided", "pixels=3,kernel_rows=3,channels=3,neurons=5"),  # stride 2, no pooling, partial segment
    ("mlp", "neurons=4,fc2.neurons=10"),  # the input stream feeds a linear layer directly
])
def test_other_layer_forms_are_bit_exact(tmp_path, network, parallel):
    quantized = quantized_variant(network)
    plan = lower(quantized)
    parallelism = parse_parallel(parallel, plan)
    design = generate(plan, parallelism, pixels_per_beat=2)
    result = verify(design, small_images("test", 2, start=10), tmp_path, "icarus", timeout_s=900)
    np.testing.assert_array_equal(result.outputs, result.expected)
    assert result.latency_cycles == [latency_cycles(plan, parallelism, 2)] * 2


def test_stimulus_beats_pack_pixels_little_endian():
    images = np.arange(2 * 8, dtype=np.uint8).reshape(2, 1, 2, 4)
    beats = stimulus_beats(images, 4)
    assert beats.shape == (2, 2)
    assert int(beats[0, 0]) == 0x03020100 and int(beats[1, 1]) == 0x0F0E0D0C


def test_toggle_coverage_parser(tmp_path):
    coverage = tmp_path / "coverage.dat"
    coverage.write_text("# SystemC::Coverage-3\n"
                        "C '\x01f\x02top.v\x01l\x0212\x01page\x02v_toggle/top\x01o\x02a[0]\x01h\x02top' 10\n"
                        "C '\x01f\x02top.v\x01l\x0213\x01page\x02v_toggle/top\x01o\x02a[1]\x01h\x02top' 4\n"
                        "C '\x01f\x02top.v\x01l\x0214\x01page\x02v_line/top\x01o\x02block\x01h\x02top' 99\n")
    assert parse_toggle_coverage(coverage) == (2, 14)
