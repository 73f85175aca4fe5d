"""fmnist-insensor: the constraints hold, the IR export runs exactly as trained, the sensor target takes it."""

import numpy as np
import torch

from spikestream import hw
from spikestream.encoding import make_encoding
from spikestream.engine import Stream
from spikestream.models import fmnist_insensor as insensor
from spikestream.models.train import TrainConfig


def seeded_model() -> insensor.InSensorCNN:
    torch.manual_seed(0)
    model = insensor.InSensorCNN().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so that folding them is tested
        model.pixel_norm.running_mean.uniform_(-0.2, 0.2)
        model.pixel_norm.running_var.uniform_(0.05, 0.5)
        model.pixel_norm.weight.uniform_(0.5, 2.0)
        model.pixel_norm.bias.uniform_(-0.5, 1.0)
    return model


def test_pixel_layer_respects_the_in_sensor_constraints():
    model = seeded_model()
    assert model.pixel.kernel_size == model.pixel.stride == (insensor.STRIDE, insensor.STRIDE)
    assert model.pixel.padding == (0, 0)
    weight, _ = insensor.folded_pixel_layer(model)  # what the pixel array holds, batch norm folded in
    for channel in weight:  # symmetric levels k·scale, |k| ≤ 2^(b-1) - 1
        scale = channel.abs().max() / (2 ** (insensor.WEIGHT_BITS - 1) - 1)
        np.testing.assert_allclose(torch.round(channel / scale) * scale, channel, atol=1e-6)
    spikes = model.spikes(torch.rand(4, 1, 28, 28))
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}


def test_ir_export_runs_as_trained_and_fits_the_sensor_target():
    model = seeded_model()
    graph = insensor.in_sensor_graph(model)
    images = torch.rand(6, 1, 28, 28)
    stream = Stream(graph, make_encoding("direct", steps=insensor.STEPS), tile=(2, 2))
    outputs = np.stack([stream.process(image[0].numpy()) for image in images])
    with torch.no_grad():
        np.testing.assert_allclose(outputs, model(images).numpy(), atol=1e-4)
    hw.attach_geometry(stream.trace, graph)
    geometry = hw.trace_geometry(stream.trace)
    assert geometry[0].kernel == geometry[0].stride and not geometry[1].graded_input  # binary spikes out
    result = hw.simulate(stream.trace, "sensor", link_format="bitmap")
    bits = insensor.CHANNELS * 14 * 14 * insensor.STEPS + 64  # bitmap + CSI-2 header
    assert result.details["sent_bits_per_frame"] == bits
    assert result.details["bandwidth_reduction"] == (28 * 28 * 12 + 64) / bits


def test_training_recipe_runs(tmp_path):
    metrics = insensor.train(tmp_path / "w.safetensors", config=TrainConfig(epochs=1, batch_size=64), limit=256,
                             test_limit=200)
    assert 0 <= metrics["test_accuracy"] <= 1 and 0 <= metrics["spike_rate"] <= 1
    reloaded = insensor.load_model(tmp_path / "w.safetensors")
    assert isinstance(reloaded, insensor.InSensorCNN)
