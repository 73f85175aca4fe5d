"""Conversion passes, the integer radix reference and the fmnist-cnn model.

Oracles: a plain numpy int64 evaluation of requantize(W ⋆ q + b) for the radix executor; a
brute-force walk over every synapse for its counts; the float ANN for threshold balancing and
quantization; the training-time SNN (``models.fmnist.spiking_logits``) for the engine's IF graph.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from spikestream import ir
from spikestream.data.fashion_mnist import find_fashion_mnist
from spikestream.encoding import make_encoding
from spikestream.engine import GraphExecutor, RadixExecutor, Stream, radix_bits
from spikestream.frontend import from_nir, to_nir
from spikestream.models import WEIGHTS_DIR, WeightsError, fmnist, load_weights
from spikestream.models.train import TrainConfig, fit, if_scan
from spikestream.passes import PASSES, quantize, relu_to_if, threshold_balancing
from spikestream.passes._quantize import power_of_two_weight_step, requantize_shift

needs_data = pytest.mark.skipif(find_fashion_mnist() is None,
                                reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")

# Accuracy tolerances, in fractions of the images (see SUBSET_ACCURACY in models/fmnist.py).
TOLERANCE = {
    "subset": 0.005,  # documented accuracy on the first 1,000 test images, for float reorderings across CPUs
    "threshold_balancing": 0.03,  # conversion at T = 32 vs its ANN on 300 test images
    "engine_vs_training": 0.01,  # predictions of the engine's IF graph vs the training-time SNN
}


# --- a plain integer oracle ------------------------------------------------------------------------


def _int_conv(q: np.ndarray, node: ir.Conv2d) -> np.ndarray:
    """W ⋆ q + b in int64: q (B, C, H, W), weight (O, C, k_h, k_w), groups 1, dilation 1."""
    (ph, pw), (sh, sw) = node.padding, node.stride
    padded = np.pad(q, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    windows = sliding_window_view(padded, node.kernel_size, axis=(2, 3))[:, :, ::sh, ::sw]  # (B, C, H', W', kh, kw)
    out = np.einsum("bchwij,ocij->bohw", windows, node.weight.astype(np.int64))
    return out + (0 if node.bias is None else node.bias.astype(np.int64)[None, :, None, None])


def _int_requantize(s: np.ndarray, shift: int, bits: int) -> np.ndarray:
    value = np.maximum(s, 0)
    if shift:
        value = (value + (1 << (shift - 1))) >> shift  # round half up
    return np.minimum(value, (1 << bits) - 1)


def integer_reference(graph: ir.Graph, q: np.ndarray) -> dict[str, np.ndarray]:
    """Every node's value, computed with numpy int64 only."""
    values: dict[str, np.ndarray] = {}
    for name in graph.order:
        node = graph.nodes[name]
        x = values[graph.predecessors(name)[0]] if node.arity != 0 else q.astype(np.int64)
        if isinstance(node, ir.Conv2d):
            values[name] = _int_conv(x, node)
        elif isinstance(node, ir.Linear):
            values[name] = x @ node.weight.astype(np.int64).T + (0 if node.bias is None else node.bias.astype(np.int64))
        elif isinstance(node, ir.Requantize):
            values[name] = _int_requantize(x, node.shift, node.bits)
        elif isinstance(node, ir.MaxPool2d):
            (kh, kw), (sh, sw) = node.kernel_size, node.stride
            values[name] = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].max(axis=(4, 5))
        elif isinstance(node, ir.Flatten):
            values[name] = x.reshape(x.shape[0], -1)
        else:
            assert node.kind in ("Input", "Output")
            values[name] = x
    return values


def brute_force_fanout(node: ir.SynapticNode, input_shape: tuple[int, ...]) -> np.ndarray:
    """Synapses leaving every input element, by visiting every (output, tap) pair."""
    if isinstance(node, ir.Linear):
        return np.full(input_shape, node.weight.shape[0], dtype=np.int64)
    fanout = np.zeros(input_shape, dtype=np.int64)
    _, height, width = input_shape
    (kh, kw), (sh, sw), (ph, pw) = node.kernel_size, node.stride, node.padding
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    for oy in range(out_h):
        for ox in range(out_w):
            for i in range(kh):
                for j in range(kw):
                    y, x = oy * sh + i - ph, ox * sw + j - pw
                    if 0 <= y < height and 0 <= x < width:
                        fanout[:, y, x] += node.weight.shape[0]
    return fanout


def _popcount(q: np.ndarray) -> np.ndarray:
    return sum((q >> bit) & 1 for bit in range(24))  # activations have at most 24 bits


# --- random quantized graphs ---------------------------------------------------------------------------


@st.composite
def quantized_graphs(draw):
    """Input → conv → Requantize → [max-pool] → conv → Requantize → Flatten → Linear → Requantize →
    Linear → Output, with integer weights and biases, random shapes, strides, paddings and shifts."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    bits = draw(st.integers(1, 8))
    weight_bits = draw(st.integers(2, 8))
    low, high = -(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1)

    def weights(*shape):
        return rng.integers(low, high, shape).astype(np.float32)

    def bias(n):
        return rng.integers(-(2**12), 2**12, n).astype(np.float32) if draw(st.booleans()) else None

    def shift():
        return draw(st.integers(0, 10))

    channels, size = draw(st.integers(1, 3)), draw(st.integers(8, 11))
    c1, c2 = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    k1, s1, p1 = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(0, 1))
    layers = [ir.Conv2d("conv1", weight=weights(c1, channels, k1, k1), bias=bias(c1), stride=s1, padding=p1),
              ir.Requantize("rq1", shift=shift(), bits=bits)]
    if (size + 2 * p1 - k1) // s1 + 1 >= 4 and draw(st.booleans()):  # room for a pool and a 2x2 conv
        layers.append(ir.MaxPool2d("pool", kernel_size=2))
    k2 = draw(st.integers(1, 2))
    layers += [ir.Conv2d("conv2", weight=weights(c2, c1, k2, k2), bias=bias(c2), padding=draw(st.integers(0, 1))),
               ir.Requantize("rq2", shift=shift(), bits=bits), ir.Flatten("flatten")]
    probe = ir.sequential((channels, size, size), layers)
    features, hidden = probe.shapes["flatten"][0], draw(st.integers(1, 6))
    layers += [ir.Linear("fc1", weight=weights(hidden, features), bias=bias(hidden)),
               ir.Requantize("rq3", shift=shift(), bits=bits),
               ir.Linear("fc2", weight=weights(3, hidden), bias=bias(3))]
    graph = ir.sequential((channels, size, size), layers)
    q = rng.integers(0, 2**bits, (draw(st.integers(1, 3)), channels, size, size))
    return graph, q


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=quantized_graphs())
def test_radix_execution_is_bit_exact_with_the_integer_oracle(case):
    graph, q = case
    result = RadixExecutor(graph).run(torch.from_numpy(q))
    expected = integer_reference(graph, q)
    for name in graph.order:
        assert np.array_equal(result.values[name].numpy().astype(np.int64), expected[name]), name
    # the float dense engine agrees while every value stays below 2^24
    if max(np.abs(v).max() for v in expected.values()) < 2**24:
        executor = GraphExecutor(graph)
        executor.reset(q.shape[0])
        dense = executor.step(torch.from_numpy(q).float()).output.numpy()
        assert np.array_equal(dense.astype(np.int64), expected["output"])
    # events are the ones in the bit planes, synops weigh them by a brute-force fan-out
    for index, layer in enumerate(graph.synaptic_layers()):
        source = expected[graph.predecessors(layer)[0]]
        ones = _popcount(source)
        fanout = brute_force_fanout(graph.nodes[layer], source.shape[1:])
        assert result.events[:, index].tolist() == ones.reshape(len(q), -1).sum(1).tolist()
        assert result.synops[:, index].tolist() == (ones * fanout).reshape(len(q), -1).sum(1).tolist()


def test_radix_stream_matches_the_executor_and_counts_every_bit_plane():
    graph, q = _fixed_quantized_graph()
    bits = radix_bits(graph)
    frames = q.astype(np.float32) / (2**bits - 1)  # quantizes back to q exactly
    stream = Stream(graph, make_encoding("radix", steps=bits))
    outputs = np.stack([stream.process(frame) for frame in frames])
    result = RadixExecutor(graph).run(torch.from_numpy(q))
    assert np.array_equal(outputs, result.output.numpy())  # output_scale 1: no metadata
    assert np.array_equal(stream.trace.events, result.events.numpy())
    assert np.array_equal(stream.trace.synops, result.synops.numpy())
    assert stream.trace.channel_work(graph.synaptic_layers()[0]).sum() > 0
    with pytest.raises(ir.IRError, match=f"quantized for T = {bits} radix bits"):
        Stream(graph, make_encoding("radix", steps=bits + 1))


def _fixed_quantized_graph():
    rng = np.random.default_rng(7)
    graph = ir.sequential((2, 8, 8), [
        ir.Conv2d("conv", weight=rng.integers(-8, 8, (3, 2, 3, 3)), bias=rng.integers(-50, 50, 3), padding=1),
        ir.Requantize("rq", shift=3, bits=4), ir.MaxPool2d("pool", kernel_size=2), ir.Flatten("flatten"),
        ir.Linear("fc", weight=rng.integers(-8, 8, (5, 48)))])
    return graph, rng.integers(0, 16, (4, 2, 8, 8))


def test_radix_execution_refuses_fractions_and_float_kinds():
    graph, _ = _fixed_quantized_graph()
    fractional = graph.replace_node(graph.nodes["fc"].replace(weight=graph.nodes["fc"].weight + 0.5))
    with pytest.raises(ir.IRError, match="integer weights"):
        RadixExecutor(fractional)
    with pytest.raises(ir.UnsupportedError, match="AvgPool2d"):
        RadixExecutor(ir.sequential((1, 4, 4), [ir.AvgPool2d("avg", kernel_size=2), ir.Requantize("rq", bits=3)]))
    with pytest.raises(ir.IRError, match="does not fit 4 radix bits"):
        RadixExecutor(graph).run(torch.full((1, 2, 8, 8), 16))


def test_requantize_node_checks_and_round_trips():
    node = ir.Requantize("rq", shift=3, bits=6)
    assert node.infer_shape([(4, 5, 5)]) == (4, 5, 5) and node.describe() == "Requantize(shift=3, bits=6)"
    for bad in ({"shift": -1}, {"bits": 0}, {"bits": 25}, {"shift": 1.5}):
        with pytest.raises(ir.IRError, match="Requantize"):
            ir.Requantize("rq", **bad)
    graph = ir.sequential((3,), [ir.Linear("fc", weight=np.eye(3)), node])
    assert from_nir(to_nir(graph)).equals(graph)
    executor = GraphExecutor(graph)
    executor.reset(1)
    out = executor.step(torch.tensor([[3.0, 4.0, 1000.0]])).output  # (3 + 4) >> 3 = 0, (4 + 4) >> 3 = 1, clipped
    assert out.tolist() == [[0.0, 1.0, 63.0]]


# --- quantize (E3NE rule) ------------------------------------------------------------------------------


def test_weight_step_is_the_power_of_two_nearest_to_mean_plus_three_sigma():
    constant = np.array([0.1, -0.1, 0.1, -0.1])  # |w| mean 0.1, σ 0: range 0.1 -> 2^-3 either way
    assert power_of_two_weight_step(constant, 8) == 2.0**-3 / 2**7
    assert power_of_two_weight_step(constant, 4, "nearest") == 2.0**-3 / 2**3
    spread = np.array([0.0, 2.0])  # mean 1, σ 1: range 4 = 2^2 exactly
    assert power_of_two_weight_step(spread, 8) == power_of_two_weight_step(spread, 8, "nearest") == 2.0**2 / 2**7
    skewed = np.array([0.14, -0.14])  # range 0.14: up to 2^-2, nearest 2^-3
    assert power_of_two_weight_step(skewed, 8) == 2.0**-2 / 2**7
    assert power_of_two_weight_step(skewed, 8, "nearest") == 2.0**-3 / 2**7
    assert requantize_shift(activation_range=63 * 8.0, accumulator_step=1.0, bits=6, rounding="nearest") == 3
    assert requantize_shift(activation_range=63 * 11.0, accumulator_step=1.0, bits=6, rounding="nearest") == 3
    assert requantize_shift(activation_range=63 * 12.0, accumulator_step=1.0, bits=6, rounding="nearest") == 4
    assert requantize_shift(activation_range=63 * 9.0, accumulator_step=1.0, bits=6) == 4  # up: 9 -> 16
    assert requantize_shift(activation_range=63 * 8.0, accumulator_step=1.0, bits=6) == 3
    assert requantize_shift(activation_range=1.0, accumulator_step=1.0, bits=6) == 0  # never a left shift


def _tiny_ann(rng) -> ir.Graph:
    return ir.sequential((1, 6, 6), [
        ir.Conv2d("conv", weight=rng.standard_normal((4, 1, 3, 3)) * 0.5, bias=rng.standard_normal(4) * 0.1),
        ir.MaxPool2d("pool", kernel_size=2), ir.ReLU("relu"), ir.Flatten("flatten"),
        ir.Linear("fc", weight=rng.standard_normal((3, 16)) * 0.3, bias=rng.standard_normal(3) * 0.1)])


def test_quantize_pass_follows_the_rule_and_tracks_the_ann():
    rng = np.random.default_rng(3)
    ann = _tiny_ann(rng)
    samples = rng.random((200, 1, 6, 6)).astype(np.float32)
    graph = PASSES["quantize"](ann, samples, bits=8, weight_bits=8, percentile=100)
    graph.verify()
    assert radix_bits(graph) == 8 and graph.nodes["relu"].kind == "Requantize"
    for layer in graph.synaptic_layers():
        original, quantized = ann.nodes[layer].weight, graph.nodes[layer].weight
        step = power_of_two_weight_step(original, 8)
        assert math.log2(step) == int(math.log2(step))  # a power of two
        assert np.array_equal(quantized, np.round(quantized)) and quantized.min() >= -128 and quantized.max() <= 127
        inside = np.abs(original) < 127 * step
        assert np.all(np.abs(quantized * step - original)[inside] <= step / 2 + 1e-9)
        assert np.array_equal(graph.nodes[layer].bias, np.round(graph.nodes[layer].bias))
    # the activation step, rounded up: the largest calibrated activation fits, using more than half the range
    executor = GraphExecutor(ann)
    executor.reset(len(samples))
    peak = float(executor.step(torch.from_numpy(samples)).values["relu"].max())
    weight_step = power_of_two_weight_step(ann.nodes["conv"].weight, 8)
    activation_step = weight_step / 255 * 2 ** graph.nodes["relu"].shift
    assert 0.5 < peak / (255 * activation_step) <= 1
    # radix execution approximates the float network
    x = torch.from_numpy(samples[:50])
    radix = RadixExecutor(graph)
    approx = radix.run(radix.quantize(x)).output.numpy() * float(graph.metadata["quantize.output_scale"])
    executor.reset(50)
    exact = executor.step(x).output.numpy()
    assert np.abs(approx - exact).max() < 0.02 * np.abs(exact).max()


def test_quantize_refuses_what_it_cannot_express():
    rng = np.random.default_rng(0)
    samples = rng.random((4, 1, 6, 6))
    snn = relu_to_if(_tiny_ann(rng))
    with pytest.raises(ir.UnsupportedError, match="converts a ReLU ANN"):
        quantize(snn, samples)
    dangling = ir.sequential((4,), [ir.ReLU("relu"), ir.Linear("fc", weight=np.ones((2, 4)))])
    with pytest.raises(ir.UnsupportedError, match="does not rectify a synaptic layer"):
        quantize(dangling, rng.random((4, 4)))
    with pytest.raises(ir.IRError, match="calibration samples"):
        quantize(_tiny_ann(rng), rng.random((4, 3, 6, 6)))


# --- threshold balancing --------------------------------------------------------------------------------


def test_threshold_balancing_rescales_layer_by_layer():
    rng = np.random.default_rng(1)
    w1, b1 = rng.standard_normal((5, 3)), rng.standard_normal(5) * 0.1
    w2, b2 = rng.standard_normal((2, 5)), rng.standard_normal(2) * 0.1
    ann = ir.sequential((3,), [ir.Linear("fc1", weight=w1, bias=b1), ir.ReLU("relu"),
                               ir.Linear("fc2", weight=w2, bias=b2)])
    samples = rng.random((64, 3))
    snn = threshold_balancing(ann, samples, percentile=100)
    peak = float(np.maximum(samples.astype(np.float32) @ ann.nodes["fc1"].weight.T + ann.nodes["fc1"].bias, 0).max())
    np.testing.assert_allclose(snn.nodes["fc1"].weight, ann.nodes["fc1"].weight / peak, rtol=1e-5)
    np.testing.assert_allclose(snn.nodes["fc1"].bias, ann.nodes["fc1"].bias / peak, rtol=1e-5)
    np.testing.assert_allclose(snn.nodes["fc2"].weight, ann.nodes["fc2"].weight * peak, rtol=1e-5)
    np.testing.assert_array_equal(snn.nodes["fc2"].bias, ann.nodes["fc2"].bias)
    relu = snn.nodes["relu"]
    assert relu.kind == "IF" and float(relu.threshold) == 1.0 and relu.reset == "subtract"
    # rate code: over T direct steps the mean readout converges to the ANN's output
    steps = 256
    stream = Stream(snn, make_encoding("direct", steps=steps))
    executor = GraphExecutor(ann)
    executor.reset(8)
    exact = executor.step(torch.from_numpy(samples[:8].astype(np.float32))).output.numpy()
    approx = np.stack([stream.process(x.astype(np.float32)) for x in samples[:8]])
    assert np.abs(approx - exact).max() <= 2 * np.abs(ann.nodes["fc2"].weight).sum(1).max() * peak / steps


def test_threshold_balancing_can_pool_spikes_instead_of_currents():
    rng = np.random.default_rng(2)
    ann = _tiny_ann(rng)  # conv -> pool -> relu -> flatten -> fc
    samples = rng.random((32, 1, 6, 6))
    currents = threshold_balancing(ann, samples)
    spikes = threshold_balancing(ann, samples, pool_spikes=True)
    assert [currents.nodes[n].kind for n in currents.order][1:4] == ["Conv2d", "MaxPool2d", "IF"]
    assert [spikes.nodes[n].kind for n in spikes.order][1:4] == ["Conv2d", "IF", "MaxPool2d"]
    assert spikes.predecessors("flatten") == ["pool"] and spikes.shapes["relu"] == (4, 4, 4)
    assert all(spikes.nodes[n].equals(currents.nodes[n]) for n in currents.nodes)  # same weights, same neurons


# --- the training-time SNN ----------------------------------------------------------------------------


def test_if_scan_gradient_is_bptt_through_a_detached_reset():
    torch.manual_seed(0)
    currents = torch.randn(6, 4, 5, dtype=torch.float64, requires_grad=True)
    spikes = if_scan(currents, 1.0, 2.0)
    upstream = torch.randn_like(spikes)
    (spikes * upstream).sum().backward()
    reference_input = currents.detach().clone().requires_grad_()
    v, total = torch.zeros(4, 5, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for t in range(6):
        v = v + reference_input[t]
        hard = (v >= 1).double()
        soft = torch.atan(torch.pi / 2 * 2.0 * (v - 1)) / torch.pi  # arctan surrogate, α = 2
        assert torch.equal(hard, spikes[t].detach())
        total = total + ((soft - soft.detach() + hard) * upstream[t]).sum()
        v = v - hard
    total.backward()
    torch.testing.assert_close(currents.grad, reference_input.grad)


def test_training_loop_smoke_one_batch():
    torch.manual_seed(0)
    model = fmnist.FangCNN()
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    before = model.fc1.weight.detach().clone()
    history = fit(model, x, y, lambda m, xb, yb: torch.nn.functional.cross_entropy(fmnist.spiking_logits(m, xb, 2), yb),
                  TrainConfig(epochs=1, batch_size=8, lr=1e-3))
    assert len(history) == 1 and math.isfinite(history[0])
    assert not torch.equal(before, model.fc1.weight)


@needs_data
def test_train_ann_writes_loadable_weights(tmp_path):
    metrics = fmnist.train_ann(tmp_path / "w.safetensors", seed=0, config=TrainConfig(epochs=1, batch_size=64),
                               limit=64, test_limit=200)
    assert 0 <= metrics["ann_test_accuracy"] <= 1
    load_weights(fmnist.FangCNN(), tmp_path / "w.safetensors")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.safetensors"]


# --- weights files -------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong shapes"])
def test_corrupt_weights_are_a_clear_error(tmp_path, damage):
    path = tmp_path / "bad.safetensors"
    if damage == "garbage":
        path.write_bytes(b"\x07" * 100)
    elif damage == "truncated":
        from spikestream.models import save_weights
        save_weights(fmnist.FangCNN(), path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        from spikestream.models import save_weights
        save_weights(torch.nn.Linear(3, 2), path)
    with pytest.raises(WeightsError) as error:
        load_weights(fmnist.FangCNN(), path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


# --- the shipped model -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def test_subset():
    return fmnist.fashion_mnist_tensors("test", 1000)


@needs_data
def test_shipped_ann_reaches_its_documented_accuracy(test_subset):
    images, labels = test_subset
    accuracy = fmnist.ann_accuracy(fmnist.load_model(), images, labels)
    assert abs(accuracy - fmnist.SUBSET_ACCURACY["ann"]) <= TOLERANCE["subset"]


@pytest.fixture(scope="module")
def shipped_radix_t6():
    return fmnist.quantized_graph(6)


@needs_data
def test_shipped_snn_and_radix_reach_their_documented_accuracy(test_subset, shipped_radix_t6):
    images, labels = test_subset
    direct = fmnist.evaluate(fmnist.snn_graph(), images, labels, make_encoding("direct", steps=fmnist.SNN_STEPS),
                             count=False)
    assert abs(direct.accuracy - fmnist.SUBSET_ACCURACY["direct-t4"]) <= TOLERANCE["subset"]
    radix = fmnist.evaluate(shipped_radix_t6, images, labels, make_encoding("radix", steps=6))
    assert abs(radix.accuracy - fmnist.SUBSET_ACCURACY["radix-t6"]) <= TOLERANCE["subset"]
    assert radix.activity > 0


@needs_data
def test_engine_runs_the_trained_snn_as_trained(test_subset):
    images, labels = test_subset[0][:200], test_subset[1][:200]
    graph = fmnist.snn_graph()
    with torch.no_grad():
        trained = fmnist.spiking_logits(fmnist.load_model(WEIGHTS_DIR / fmnist.SNN_WEIGHTS), images,
                                        fmnist.SNN_STEPS).argmax(1)
    batched = fmnist.evaluate(graph, images, labels, make_encoding("direct", steps=fmnist.SNN_STEPS), count=False)
    assert abs(batched.accuracy - float((trained == labels).float().mean())) <= TOLERANCE["engine_vs_training"]
    # frame by frame through a Stream: the same classes, and the Trace holds the batched counts
    stream = Stream(graph, make_encoding("direct", steps=fmnist.SNN_STEPS), record_work=False)
    streamed = torch.tensor([int(np.argmax(stream.process(x))) for x in images[:10]])
    assert torch.equal(streamed, trained[:10])
    counted = fmnist.evaluate(graph, images[:10], labels[:10], make_encoding("direct", steps=fmnist.SNN_STEPS))
    assert [layer["synops"] for layer in counted.layers] == stream.trace.synops.sum(0).tolist()
    assert [layer["events"] for layer in counted.layers] == stream.trace.events.sum(0).tolist()


@needs_data
def test_threshold_balancing_keeps_accuracy_on_real_images(test_subset):
    images, labels = test_subset[0][:300], test_subset[1][:300]
    calibration = fmnist.fashion_mnist_tensors("train", 500)[0]
    ann = fmnist.ann_graph()
    snn = threshold_balancing(ann, calibration, percentile=99.9)
    converted = fmnist.evaluate(snn, images, labels, make_encoding("direct", steps=32), count=False)
    reference = fmnist.evaluate(ann, images, labels, make_encoding("direct", steps=1), count=False)
    assert converted.accuracy >= reference.accuracy - TOLERANCE["threshold_balancing"]


@needs_data
def test_radix_execution_on_real_images_is_bit_exact(test_subset, shipped_radix_t6):
    graph = shipped_radix_t6
    radix = RadixExecutor(graph)
    q = radix.quantize(test_subset[0][:20])
    result = radix.run(q)
    expected = integer_reference(graph, q.numpy().astype(np.int64))
    assert np.array_equal(result.output.numpy().astype(np.int64), expected[graph.output_names[0]])
