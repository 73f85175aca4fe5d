"""fmnist-insensor: the Fashion-MNIST classifier with its first layer constrained to run inside the pixels.

The in-sensor constraints of Datta et al. ("In-Sensor & Neuromorphic Computing are all you need for
Energy Efficient Computer Vision", ICASSP 2023) on the first layer:

- kernel = stride (``STRIDE`` x ``STRIDE``, no padding): every pixel feeds exactly one output position,
  so the multiply-accumulate happens in the pixel's own neighbourhood, with no overlap;
- low-bit weights: ``WEIGHT_BITS``-bit symmetric, one scale per output channel (transistor sizes);
  a per-channel batch norm before the spike trains the scale and offset of each channel's current
  (in P2M it is fused into the in-pixel circuit); it folds exactly into the per-channel weight scale
  and the bias, so the exported layer is still 4-bit levels × one scale per channel, plus a bias;
- binary outputs: an IF neuron (θ = ``THRESHOLD``, reset by subtraction) per output, fed the analog
  pixel current for T = ``STEPS`` steps (direct encoding); only its spikes leave the sensor.

Network (``InSensorCNN``): pixel conv 1→32 2x2/2 + batch norm + IF spikes (28 → 14), then on the
processor conv 32→32 3x3 (14 → 12), max-pool 2 (→ 6), ReLU, FC 1152→256, ReLU, FC 256→10. It has the depth and
width of ``fmnist-cnn`` (E3NE/Fang CNN), whose first layer is an unconstrained 3x3/1 convolution on
analog pixels; the comparison of the two is in ``docs/hardware.md`` (``benchmarks/hardware.py``).

Training (``train``): the same data, optimiser and schedule as the fmnist-cnn ANN
(``fmnist.ANN_CONFIG``, ``models.train.fit``); the spike's gradient is the arctan surrogate of
``models.train.if_scan`` and the weights' rounding is passed straight through (STE).
``in_sensor_graph`` exports the trained network as an IR graph with the quantized pixel weights and
an IF node, which runs in a ``Stream`` with direct encoding (T = ``STEPS``) exactly as trained.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikestream import ir
from spikestream._progress import status
from spikestream.models._weights import WEIGHTS_DIR, load_weights, save_weights
from spikestream.models._zoo import ZooModel, register_model
from spikestream.models.fmnist import ANN_CONFIG, INPUT_SHAPE, ann_accuracy, fashion_mnist_tensors
from spikestream.models.train import TrainConfig, fit, if_scan

STRIDE = 2  # pixel layer kernel = stride
CHANNELS = 32  # pixel layer output channels
WEIGHT_BITS = 4  # pixel layer weight bits (symmetric, per output channel)
THRESHOLD = 1.0  # θ of the pixel IF neurons
STEPS = 1  # T: direct-encoding steps the pixel neurons integrate (binary spikes leave once per step)
SURROGATE_ALPHA = 2.0
WEIGHTS = "fmnist-insensor.safetensors"


def quantize_symmetric(weight: Tensor, bits: int) -> Tensor:
    """Round to ``bits``-bit symmetric levels, one scale per output channel; straight-through gradient."""
    levels = 2 ** (bits - 1) - 1
    scale = weight.detach().abs().flatten(1).amax(1).clamp_min(1e-8) / levels  # (C_out,)
    scale = scale.view(-1, *([1] * (weight.dim() - 1)))
    quantized = torch.clamp(torch.round(weight / scale), -levels, levels) * scale
    return weight + (quantized - weight).detach()


class InSensorCNN(nn.Module):
    """Pixel layer (2x2/2, 4-bit weights, IF spikes) → conv 32→32 3x3 → pool → FC 256 → FC 10."""

    def __init__(self, channels: int = CHANNELS, stride: int = STRIDE, weight_bits: int = WEIGHT_BITS,
                 steps: int = STEPS):
        super().__init__()
        self.weight_bits, self.steps = weight_bits, steps
        self.pixel = nn.Conv2d(1, channels, stride, stride=stride)
        self.pixel_norm = nn.BatchNorm2d(channels)  # folded into the pixel weights' scale and bias on export
        self.conv2 = nn.Conv2d(channels, 32, 3)
        side = (INPUT_SHAPE[1] // stride - 2) // 2
        self.fc1 = nn.Linear(32 * side * side, 256)
        self.fc2 = nn.Linear(256, 10)
        self.pool = nn.MaxPool2d(2)

    def pixel_weight(self) -> Tensor:
        return quantize_symmetric(self.pixel.weight, self.weight_bits)

    def spikes(self, x: Tensor) -> Tensor:
        """(B, 1, 28, 28) pixels → (T, B, C, 14, 14) binary spikes of the in-pixel layer."""
        current = self.pixel_norm(F.conv2d(x, self.pixel_weight(), self.pixel.bias, stride=self.pixel.stride))
        return if_scan(current.expand(self.steps, *current.shape), THRESHOLD, SURROGATE_ALPHA)

    def forward(self, x: Tensor) -> Tensor:
        s = self.spikes(x).mean(0)  # (B, C, 14, 14); T = 1: the spikes themselves
        x = torch.relu(self.pool(self.conv2(s)))  # -> (B, 32, 6, 6)
        x = torch.relu(self.fc1(torch.flatten(x, 1)))  # -> (B, 256)
        return self.fc2(x)  # -> (B, 10)


def load_model(weights: str | os.PathLike | None = None) -> InSensorCNN:
    return load_weights(InSensorCNN(), WEIGHTS_DIR / WEIGHTS if weights is None else weights).eval()


def folded_pixel_layer(model: InSensorCNN) -> tuple[Tensor, Tensor]:
    """(weight, bias) of the pixel layer with its batch norm folded in (eval statistics): the weight is
    the quantized one times γ/σ per channel, so it keeps one scale per channel over 4-bit levels."""
    norm = model.pixel_norm
    with torch.no_grad():
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)  # (C,)
        weight = model.pixel_weight() * scale[:, None, None, None]
        bias = (model.pixel.bias - norm.running_mean) * scale + norm.bias
    return weight, bias


def in_sensor_graph(model: InSensorCNN | None = None) -> ir.Graph:
    """The network as an IR graph: folded quantized pixel weights, an IF node for the spikes, the rest as
    is. Run it with ``Stream(graph, make_encoding("direct", steps=STEPS))`` (exact for T = 1)."""
    model = (model or load_model()).eval()
    if model.steps != 1:
        raise ValueError("the IR export is exact for T = 1 only (the processor part reads the step's spikes)")
    array = lambda t: t.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    pixel_weight, pixel_bias = folded_pixel_layer(model)
    return ir.sequential(INPUT_SHAPE, [
        ir.Conv2d("pixel", weight=array(pixel_weight), bias=array(pixel_bias), stride=model.pixel.stride),
        ir.IF("pixel_spike", threshold=THRESHOLD, reset="subtract"),
        ir.Conv2d("conv2", weight=array(model.conv2.weight), bias=array(model.conv2.bias)),
        ir.MaxPool2d("pool", kernel_size=2),
        ir.ReLU("relu2"),
        ir.Flatten("flatten"),
        ir.Linear("fc1", weight=array(model.fc1.weight), bias=array(model.fc1.bias)),
        ir.ReLU("relu3"),
        ir.Linear("fc2", weight=array(model.fc2.weight), bias=array(model.fc2.bias)),
    ])


def spike_rate(model: InSensorCNN, images: Tensor, batch_size: int = 1000) -> float:
    """Fraction of in-pixel neurons that fire per step (what the link carries)."""
    with torch.no_grad():
        return float(np.mean([model.spikes(images[i:i + batch_size]).mean().item()
                              for i in range(0, len(images), batch_size)]))


def train(out_path: str | os.PathLike, seed: int = 0, config: TrainConfig = ANN_CONFIG,
          limit: int | None = None, test_limit: int | None = None) -> dict:
    """Train with fmnist-cnn's ANN recipe under the in-sensor constraints; writes ``out_path``."""
    torch.manual_seed(seed)
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    model = InSensorCNN()
    images, labels = fashion_mnist_tensors("train", limit)
    test_images, test_labels = fashion_mnist_tensors("test", test_limit)

    def loss_fn(module: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(module(x), y)

    start = time.perf_counter()
    history = fit(model, images, labels, loss_fn, dataclasses.replace(config, seed=seed),
                  description="fmnist-insensor")
    wall_s = time.perf_counter() - start
    accuracy = ann_accuracy(model, test_images, test_labels)
    rate = spike_rate(model, test_images)
    status(f"fmnist-insensor: test accuracy {accuracy:.4f}, in-pixel spike rate {rate:.3f} ({wall_s:.0f} s)")
    save_weights(model, Path(out_path), metadata={
        "model": "fmnist-insensor", "seed": seed, "test_accuracy": f"{accuracy:.4f}", "spike_rate": f"{rate:.4f}",
        "constraints": f"pixel layer {STRIDE}x{STRIDE}/{STRIDE}, {WEIGHT_BITS}-bit weights, binary IF spikes, "
                       f"T={STEPS}",
        "command": "spikestream train fmnist-insensor"})
    return {"test_accuracy": accuracy, "spike_rate": rate, "loss": history, "wall_s": wall_s}


register_model(ZooModel(
    name="fmnist-insensor",
    description="fmnist-cnn with an in-sensor first layer: 2x2/2 pixel convolution, 4-bit weights, binary IF "
                "spikes (T=1), then conv32-pool-fc256-fc10 on the processor",
    task="classification",
    input_shape=INPUT_SHAPE,
    architecture=InSensorCNN,
    weights=WEIGHTS,
    train=train,
))
