"""Lowering, parallelism configuration and the Amaranth generator: what is supported, what is rejected
(with which message), and that a configuration that cannot fit the device is refused before synthesis."""

from __future__ import annotations

import numpy as np
import pytest

from _rtl_networks import SMALL_PARALLEL, fang_cnn_quantized, have_data, small_cnn
from spikestream import ir
from spikestream.rtl import (
    ConfigurationError,
    UnsupportedLayerError,
    check_fits,
    estimate,
    generate,
    lower,
    parse_parallel,
)
from spikestream.rtl._components import conv_weight_words, linear_weight_words
from spikestream.rtl._config import LayerParallelism
from spikestream.rtl.synth import device_table

needs_data = pytest.mark.skipif(not have_data(), reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")


def _quantized(layers, input_shape=(1, 8, 8)) -> ir.Graph:
    graph = ir.sequential(input_shape, layers)
    return graph.with_changes(metadata={"quantize.bits": "4", "quantize.weight_bits": "4"})


def _conv(name, c_in, c_out, **kwargs):
    rng = np.random.default_rng(0)
    return ir.Conv2d(name, weight=rng.integers(-8, 8, (c_out, c_in, 3, 3)), bias=rng.integers(-20, 20, c_out),
                     **kwargs)


@pytest.mark.parametrize("layer, named", [
    (ir.AvgPool2d("avg", kernel_size=2), "'avg' (AvgPool2d)"),
    (ir.Upsample("up", scale_factor=2), "'up' (Upsample)"),
    (ir.SumPool2d("sum", kernel_size=2), "'sum' (SumPool2d)"),
])
def test_unsupported_layer_is_named_with_what_is_supported(layer, named):
    graph = _quantized([_conv("conv", 1, 2), ir.Requantize("q", shift=3, bits=4), layer, ir.Flatten("flat"),
                        ir.Linear("fc", weight=np.ones((3, 2 * 3 * 3 if layer.kind != "Upsample" else 2 * 12 * 12)))])
    with pytest.raises(UnsupportedLayerError) as caught:
        lower(graph)
    message = str(caught.value)
    assert named in message and "supports Conv2d" in message and "Linear" in message
    assert "\n" not in message  # one line for the CLI


def test_grouped_convolution_and_overlapping_pooling_are_rejected():
    grouped = _quantized([_conv("grouped", 2, 2, groups=2).replace(weight=np.ones((2, 1, 3, 3))),
                          ir.Requantize("q", shift=2, bits=4), ir.Flatten("flat"), ir.Linear("fc", np.ones((2, 72)))],
                         input_shape=(2, 8, 8))
    with pytest.raises(UnsupportedLayerError, match=r"'grouped' \(Conv2d\) \(groups=2"):
        lower(grouped)
    overlapping = _quantized([_conv("conv", 1, 2), ir.MaxPool2d("pool", kernel_size=3, stride=1),
                              ir.Requantize("q", shift=2, bits=4), ir.Flatten("flat"),
                              ir.Linear("fc", np.ones((2, 32)))])
    with pytest.raises(UnsupportedLayerError, match=r"'pool' .*kernel"):
        lower(overlapping)


def test_float_graph_must_be_quantized_first():
    graph = ir.sequential((1, 8, 8), [_conv("conv", 1, 2), ir.ReLU("relu"), ir.Flatten("flat"),
                                      ir.Linear("fc", np.ones((3, 72)))])
    with pytest.raises(ir.IRError, match="quantize"):
        lower(graph)


@needs_data
@pytest.mark.parametrize("text, message", [
    ("channels=3", r"c1: channels x units = 3 x 1 = 3 must divide its 4 output channels"),
    ("neurons=5", r"f1: neurons=5 must divide its 12 outputs; choose one of \[1, 2, 3, 4, 6, 12\]"),
    ("kernel_rows=4", "exceeds its kernel height 3"),
    ("pixels=3", "multiple of the pooling width 2"),
    ("c9.pixels=2", "names layer 'c9'"),
    ("pixels", "LEVEL=N"),
    ("speed=2", "unknown parallelism level 'speed'"),
])
def test_bad_parallelism_says_what_fits(text, message):
    _, quantized = small_cnn()
    plan = lower(quantized)
    with pytest.raises(ConfigurationError, match=message):
        parallelism = parse_parallel(f"channels=2,neurons=2,f2.neurons=5,{text}", plan)
        for stage in plan.stages:
            parallelism.for_stage(stage)


HUGE_FANG = ("conv1.pixels=26,conv1.kernel_rows=3,conv1.channels=32,conv2.pixels=10,conv2.kernel_rows=3,"
             "conv2.channels=32,fc1.neurons=256,fc2.neurons=10")


@needs_data
def test_configuration_that_does_not_fit_is_rejected_before_synthesis(monkeypatch, tmp_path, capsys):
    """A too-parallel fmnist-cnn on an XC7Z020 is refused from the model alone: nothing is generated."""
    from spikestream import cli
    from spikestream.rtl import compiler

    quantized = fang_cnn_quantized()
    with pytest.raises(ConfigurationError, match=r"does not fit XC7Z020: LUTs [\d,]+ > 53,200"):
        check_fits(estimate(lower(quantized), parse_parallel(HUGE_FANG)), device_table("xc7z020"))

    def forbidden(*args, **kwargs):
        raise AssertionError("the design was generated or synthesized although it cannot fit")

    monkeypatch.setattr(compiler, "generate", forbidden)
    monkeypatch.setattr(compiler, "synthesize", forbidden)
    monkeypatch.setattr(compiler, "quantized_model", lambda *args: (quantized, None, "fmnist-cnn"))
    code = cli.main(["--quiet", "compile", "fmnist-cnn", "--synth", "--parallel", HUGE_FANG, "--out", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err
    assert error.startswith("spikestream compile: error: configuration") and "does not fit XC7Z020" in error
    assert error.count("\n") == 1


@needs_data
def test_weight_memories_hold_the_model_weights():
    """Unpack every ROM word of every unit of the small network and compare with the stage weights."""
    _, quantized = small_cnn()
    plan = lower(quantized)
    parallelism = parse_parallel(SMALL_PARALLEL, plan)
    bits = plan.weight_bits

    def field(word, index):
        value = (word >> (index * bits)) & ((1 << bits) - 1)
        return value - (1 << bits) if value >> (bits - 1) else value

    for stage in plan.stages:
        levels = parallelism.for_stage(stage)
        if stage.kind == "linear":
            words = linear_weight_words(stage, levels.neurons, bits)
            for group in range(stage.output_shape[0] // levels.neurons):
                for feature in range(stage.input_shape[0]):
                    word = words[group * stage.input_shape[0] + feature]
                    for neuron in range(levels.neurons):
                        assert field(word, neuron) == stage.weight[group * levels.neurons + neuron, feature]
            continue
        k_h, k_w = stage.kernel
        row_groups = -(-k_h // levels.kernel_rows)
        for copy in range(levels.units):
            words = conv_weight_words(stage, levels, bits, copy)
            for index, word in enumerate(words):
                rest, row_group = divmod(index, row_groups)
                group, channel_in = divmod(rest, stage.input_shape[0])
                position = 0
                for channel in range(levels.channels):
                    out_channel = (group * levels.units + copy) * levels.channels + channel
                    for bank in range(levels.kernel_rows):
                        row = row_group * levels.kernel_rows + bank
                        for column in range(k_w):
                            expected = stage.weight[out_channel, channel_in, row, column] if row < k_h else 0
                            assert field(word, position) == expected
                            position += 1


@needs_data
def test_generated_verilog_has_the_streaming_ports():
    _, quantized = small_cnn()
    design = generate(quantized, parse_parallel(SMALL_PARALLEL, lower(quantized)), pixels_per_beat=2)
    header = design.verilog[design.verilog.index("module spikestream_accelerator("):].split(";")[0]
    for port in ("clk", "rst", "pixels__valid", "pixels__ready", "pixels__payload", "outputs__valid",
                 "outputs__ready", "outputs__payload", "layer_busy"):
        assert port in header
    assert "input [15:0] pixels__payload" in design.verilog
    assert design.output_count == 10


def test_layer_parallelism_checks_its_fields():
    with pytest.raises(ConfigurationError, match="channels must be an integer >= 1"):
        LayerParallelism(channels=0)
