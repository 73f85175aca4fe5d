"""Small quantized networks shared by the RTL tests (not a test module: no ``test_`` prefix).

``small_cnn`` exercises what fmnist-cnn does not: zero padding, a convolution whose last output row and
column no pooling window uses, several channel groups and duplicated units, row segments and partial
kernel-row groups. Inputs are real Fashion-MNIST images subsampled to 14x14.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

from spikestream.data.fashion_mnist import find_fashion_mnist, load_fashion_mnist
from spikestream.frontend import from_torch
from spikestream.passes import quantize

SMALL_PARALLEL = "pixels=4,kernel_rows=2,channels=2,units=2,neurons=4,c2.channels=1,c2.units=3,c2.pixels=2,f2.neurons=5"


class SmallCNN(nn.Module):
    """conv 1→4 3x3 pad 1 → pool 2 → ReLU → conv 4→6 3x3 → pool 2 → ReLU → FC 24→12 → ReLU → FC 12→10."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 3)
        self.f1 = nn.Linear(24, 12)
        self.f2 = nn.Linear(12, 10)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        x = torch.relu(self.pool(self.c1(x)))  # (B, 1, 14, 14) -> (B, 4, 7, 7)
        x = torch.relu(self.pool(self.c2(x)))  # -> (B, 6, 5, 5) -> (B, 6, 2, 2): row and column 4 unused
        return self.f2(torch.relu(self.f1(torch.flatten(x, 1))))


def small_images(split: str = "test", count: int = 8, start: int = 0) -> np.ndarray:
    """Fashion-MNIST images subsampled to 14x14, uint8 (N, 1, 14, 14)."""
    images, _ = load_fashion_mnist(split)
    return np.ascontiguousarray(images[start:start + count, ::2, ::2][:, None])


@functools.cache
def small_cnn(bits: int = 4, weight_bits: int = 4):
    """(float graph, quantized graph) of a seeded SmallCNN, calibrated on 200 training images."""
    torch.manual_seed(1)
    graph = from_torch(SmallCNN().eval(), (1, 14, 14))
    calibration = torch.from_numpy(small_images("train", 200)).float() / 255
    return graph, quantize(graph, calibration, bits=bits, weight_bits=weight_bits)


def have_data() -> bool:
    return find_fashion_mnist() is not None


@functools.cache
def fang_cnn_quantized(bits: int = 4, weight_bits: int = 4):
    """fmnist-cnn's architecture (``models.fmnist.FangCNN``) with seeded weights, quantized on 64 training
    images: the shapes of the real network without its trained weights or a long calibration."""
    from spikestream.models.fmnist import FangCNN

    torch.manual_seed(0)
    graph = from_torch(FangCNN().eval(), (1, 28, 28))
    images, _ = load_fashion_mnist("train")
    calibration = torch.from_numpy(images[:64, None]).float() / 255
    return quantize(graph, calibration, bits=bits, weight_bits=weight_bits)


class StridedCNN(nn.Module):
    """conv 1→3 3x3 stride 2 pad 1 (no pooling) → ReLU → FC 147→10: strides and a pool-free convolution."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.fc = nn.Linear(3 * 7 * 7, 10)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))  # (B, 1, 14, 14) -> (B, 3, 7, 7) -> (B, 10)


class SmallMLP(nn.Module):
    """FC 196→16 → ReLU → FC 16→10 on flattened pixels: a linear first layer fed by the input stream."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(196, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(x, 1))))


@functools.cache
def quantized_variant(name: str, bits: int = 4, weight_bits: int = 4):
    """A quantized StridedCNN ("strided") or SmallMLP ("mlp"), seeded, calibrated on 200 training images."""
    torch.manual_seed(2)
    module = {"strided": StridedCNN, "mlp": SmallMLP}[name]().eval()
    graph = from_torch(module, (1, 14, 14))
    calibration = torch.from_numpy(small_images("train", 200)).float() / 255
    return quantize(graph, calibration, bits=bits, weight_bits=weight_bits)
