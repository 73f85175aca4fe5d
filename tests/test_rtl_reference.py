"""The RTL's integer reference (``rtl.reference``) against the engine's radix mode and the float model.

Oracles: ``engine.RadixExecutor`` (the same network in the graph's order, float64 tensors) must agree
bit for bit, at every stage's output; ``encoding.radix_quantize`` for the input ROM; ``neurons.requantize``
for the folded requantization constant.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from _rtl_networks import have_data, small_cnn, small_images
from spikestream.encoding import radix_quantize
from spikestream.engine import RadixExecutor
from spikestream.ir import IRError
from spikestream.models import WEIGHTS_DIR, fmnist
from spikestream.neurons import requantize
from spikestream.rtl import IntegerReference, float_quantized_logits, lower
from spikestream.rtl._lowering import requantize_offset
from spikestream.rtl.reference import radix_encode_pixels, requantize_integers

needs_data = pytest.mark.skipif(not have_data(), reason="Fashion-MNIST is not installed (dataset-fashion-mnist)")
needs_weights = pytest.mark.skipif(not (WEIGHTS_DIR / fmnist.ANN_WEIGHTS).exists(),
                                   reason="fmnist-cnn weights are not shipped yet")

# Tolerances, as fractions of the images.
TOLERANCE = {
    "float_quantized_agreement": 0.9,  # argmax agreement of the float32 fake-quantized net and the integers
}


@pytest.mark.parametrize("bits", range(1, 9))
def test_pixel_encoder_equals_radix_quantize(bits):
    pixels = np.arange(256, dtype=np.uint8)
    expected = radix_quantize(torch.from_numpy(pixels).float() / 255.0, bits).numpy()
    np.testing.assert_array_equal(radix_encode_pixels(pixels, bits), expected)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**20), 2**20), min_size=1, max_size=16), st.integers(-(2**12), 2**12),
       st.integers(0, 12), st.integers(1, 8))
def test_folded_requantization_equals_requantize(accumulators, bias, shift, bits):
    """min(max((S + c) >> k, 0), 2^T − 1), c = b + 2^(k−1), is ReLU → round-half-up shift → clip of S + b."""
    total = np.asarray(accumulators, np.int64).reshape(1, -1)  # one channel per entry
    biases = np.full(total.shape[1], bias, np.int64)
    folded = requantize_integers(total, requantize_offset(biases, shift), shift, bits)
    expected = requantize(torch.from_numpy(total + biases), shift, bits).numpy()
    np.testing.assert_array_equal(folded, expected)


def _assert_matches_engine(graph, images):
    reference = IntegerReference(graph)
    result = reference.run(reference.encode(images))
    executor = RadixExecutor(graph)
    engine = executor.run(executor.quantize(torch.from_numpy(images).float() / 255.0))
    np.testing.assert_array_equal(result.output, engine.output.numpy().astype(np.int64))
    for stage in reference.plan.stages:  # every stage's output, pooled after requantizing
        np.testing.assert_array_equal(result.activations[stage.name],
                                      engine.values[stage.output_node].numpy().astype(np.int64))
    return result


@needs_data
def test_reference_equals_engine_radix_small_network():
    _, quantized = small_cnn()
    _assert_matches_engine(quantized, small_images("test", 64))


@needs_data
@needs_weights
def test_reference_equals_engine_radix_fmnist_cnn():
    """fmnist-cnn, 4-bit weights, T = 4, on a subset (benchmarks/rtl.py runs 1,000 images)."""
    from spikestream.data.fashion_mnist import load_fashion_mnist

    quantized = fmnist.quantized_graph(bits=4, weight_bits=4)
    images = load_fashion_mnist("test")[0][:48, None]
    result = _assert_matches_engine(quantized, images)
    assert result.output.shape == (48, 10)


@needs_data
def test_float_quantized_model_agrees_with_integers():
    float_graph, quantized = small_cnn()
    images = small_images("test", 200)
    plan = lower(quantized)
    integers = IntegerReference(plan).run(radix_encode_pixels(images, plan.bits)).output
    logits = float_quantized_logits(float_graph, quantized, images)
    assert (logits.argmax(1) == integers.argmax(1)).mean() >= TOLERANCE["float_quantized_agreement"]
    scaled = integers * plan.output_scale  # same units: the float net's logits
    assert np.median(np.abs(logits - scaled)) <= 4 * plan.output_scale * 2**4


@needs_data
def test_reference_rejects_out_of_range_inputs():
    _, quantized = small_cnn()
    with pytest.raises(IRError, match="inputs in"):
        IntegerReference(quantized).run(np.full((1, 1, 14, 14), 16))
