"""fmnist-cnn: the E3NE / Fang et al. CNN on Fashion-MNIST, as an ANN, an IF SNN and a radix network.

Network
-------
``FangCNN``: conv 1→32 3x3, max-pool 2, ReLU, conv 32→32 3x3, max-pool 2, ReLU, FC 800→256, ReLU,
FC 256→10 (no padding, so 28 → 26 → 13 → 11 → 5 and 32·5·5 = 800 features): the Fashion-MNIST
network of E3NE (arXiv 2111.10027), after Fang et al. (ICCV 2021) without their batch norm. Inputs are
pixels in [0, 1], not standardised, so that direct, rate and radix codes all see the same values.
Pooling comes before the ReLU (the same function: they commute), so the spiking and quantized forms
pool the synaptic currents and then fire or requantize: a quarter of the neurons, and an exact max
for the radix network (requantization is monotone).

Three executable forms, all from the same ``spikestream.ir`` graph (``ann_graph``):

- ANN: the float graph, one step per image;
- IF SNN (``snn_graph``): every ReLU an IF neuron with threshold 1 and reset by subtraction, weights
  in spiking units; the readout is the mean over the T steps of the last layer's output. Its weights
  (``SNN_WEIGHTS``) start from ``passes.threshold_balancing`` of the ANN and are fine-tuned with
  surrogate-gradient BPTT (arctan surrogate, ``models.train.if_scan``) for direct encoding, T = 4;
- radix network (``quantized_graph``): ``passes.quantize`` (E3NE's power-of-two rule) run on the
  integer reference ``engine.RadixExecutor``.

Training
--------
``train(out_path, seed)`` (``spikestream train fmnist-cnn``) reproduces both shipped files, seeded, on
at most 2 threads: the ANN (``ANN_CONFIG``: AdamW, cosine schedule, 6 epochs of the 60,000 training
images, cross-entropy), then the SNN written beside it (``fine_tune_direct``: threshold balancing at
p99.9 on ``CALIBRATION_IMAGES`` training images, then ``SNN_CONFIG``, 2 epochs of BPTT at T = 4).
Measured accuracies and training times are in ``docs/accuracy.md`` (``benchmarks/accuracy.py``);
``SUBSET_ACCURACY`` holds the ones tests check.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikestream import ir
from spikestream._progress import progress, status
from spikestream.data.fashion_mnist import load_fashion_mnist
from spikestream.encoding import Encoding, make_encoding
from spikestream.engine import GraphExecutor, LayerCounter, RadixExecutor, radix_bits
from spikestream.models._weights import WEIGHTS_DIR, load_weights, save_weights
from spikestream.models._zoo import ZooModel, register_model
from spikestream.models.train import TrainConfig, fit, if_scan

INPUT_SHAPE = (1, 28, 28)
ANN_WEIGHTS = "fmnist-cnn.safetensors"
SNN_WEIGHTS = "fmnist-cnn-direct-t4.safetensors"  # IF SNN weights (threshold 1), fine-tuned at SNN_STEPS
SNN_STEPS = 4  # T the SNN is fine-tuned for, with direct encoding
SNN_ALPHA = 2.0  # sharpness of the arctan surrogate gradient
ANN_CONFIG = TrainConfig(epochs=6, batch_size=128, lr=2e-3, weight_decay=5e-4)
SNN_CONFIG = TrainConfig(epochs=2, batch_size=128, lr=5e-4, weight_decay=0.0)
BALANCING_PERCENTILE = 99.9  # threshold balancing of the SNN's starting point
CALIBRATION_IMAGES = 2000  # first training images used for threshold balancing and quantization
# Test accuracy of the shipped weights on the first 1,000 Fashion-MNIST test images (checked by
# tests/test_conversion.py; the full 10,000-image results are in docs/accuracy.md)
SUBSET_ACCURACY = {"ann": 0.913, "direct-t4": 0.910, "radix-t6": 0.914}


class FangCNN(nn.Module):
    """conv 1→32 3x3 → max-pool 2 → ReLU → conv 32→32 3x3 → max-pool 2 → ReLU → FC 800→256 → ReLU → FC 256→10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 32, 3)
        self.fc1 = nn.Linear(800, 256)
        self.fc2 = nn.Linear(256, 10)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        x = torch.relu(self.pool(self.conv1(x)))  # (B, 1, 28, 28) -> (B, 32, 13, 13)
        x = torch.relu(self.pool(self.conv2(x)))  # -> (B, 32, 5, 5); pool first: 4x fewer neurons
        x = torch.relu(self.fc1(torch.flatten(x, 1)))  # -> (B, 256)
        return self.fc2(x)  # -> (B, 10) logits


def spiking_logits(model: FangCNN, x: Tensor, steps: int, encoding: str = "direct",
                   generator: torch.Generator | None = None, alpha: float = SNN_ALPHA) -> Tensor:
    """The IF SNN of ``model`` over T = ``steps`` (differentiable; what ``snn_graph`` computes).

    Every ReLU is an IF neuron (θ = 1, reset by subtraction, v = 0 at the start); the readout is the
    mean over the steps of the last layer. Layers run one after the other over all T steps at once,
    which for a feed-forward network equals stepping the whole network T times.
    ``encoding``: "direct" (the image at every step) or "rate" (Bernoulli spikes from ``generator``).
    """
    batch = x.shape[0]
    if encoding == "direct":
        current = F.max_pool2d(model.conv1(x), 2).expand(steps, -1, -1, -1, -1)  # the same every step
    elif encoding == "rate":
        spikes = (torch.rand((steps, *x.shape), generator=generator) < x.unsqueeze(0)).to(x.dtype)
        current = F.max_pool2d(model.conv1(spikes.flatten(0, 1)), 2).unflatten(0, (steps, batch))
    else:
        raise ValueError(f"spiking_logits supports 'direct' and 'rate' encoding, not {encoding!r}")
    s = if_scan(current, 1.0, alpha).flatten(0, 1)  # (T, B, 32, 13, 13) currents -> (T·B, 32, 13, 13) spikes
    current = F.max_pool2d(model.conv2(s), 2).unflatten(0, (steps, batch))  # (T, B, 32, 5, 5)
    s = if_scan(current, 1.0, alpha).flatten(0, 1)
    s = if_scan(model.fc1(torch.flatten(s, 1)).unflatten(0, (steps, batch)), 1.0, alpha)  # (T, B, 256)
    return model.fc2(s.mean(0))  # the mean of a linear readout is the readout of the mean


# --- data ----------------------------------------------------------------------------------------


def fashion_mnist_tensors(split: str, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Images as float32 (N, 1, 28, 28) in [0, 1] and labels int64 (N,); the first ``limit`` only if given."""
    images, labels = load_fashion_mnist(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images).to(torch.float32).div_(255.0).unsqueeze(1), torch.from_numpy(labels)


# --- graphs ----------------------------------------------------------------------------------------


def load_model(weights: str | os.PathLike | None = None) -> FangCNN:
    """A FangCNN with the given weights file (default: the shipped ANN), in eval mode."""
    return load_weights(FangCNN(), WEIGHTS_DIR / ANN_WEIGHTS if weights is None else weights).eval()


def ann_graph(weights: str | os.PathLike | None = None) -> ir.Graph:
    """The ANN as an IR graph (``from_torch``); default weights: the shipped ANN."""
    from spikestream.frontend import from_torch

    return from_torch(load_model(weights), INPUT_SHAPE)


def snn_graph(weights: str | os.PathLike | None = None) -> ir.Graph:
    """The fine-tuned IF SNN as an IR graph (ReLUs → IF, θ = 1, reset by subtraction)."""
    from spikestream.passes import relu_to_if

    return relu_to_if(ann_graph(WEIGHTS_DIR / SNN_WEIGHTS if weights is None else weights))


def quantized_graph(bits: int, weight_bits: int = 8, weights: str | os.PathLike | None = None,
                    calibration: Tensor | None = None) -> ir.Graph:
    """The ANN quantized for radix execution with T = ``bits`` (``passes.quantize``), calibrated on the
    first ``CALIBRATION_IMAGES`` training images unless ``calibration`` is given."""
    from spikestream.passes import quantize

    if calibration is None:
        calibration = fashion_mnist_tensors("train", CALIBRATION_IMAGES)[0]
    return quantize(ann_graph(weights), calibration, bits=bits, weight_bits=weight_bits)


def _copy_weights(graph: ir.Graph, model: FangCNN) -> FangCNN:
    """Load the synaptic weights of a FangCNN-shaped graph (node names = module names) into ``model``."""
    with torch.no_grad():
        for name, module in model.named_children():
            if not isinstance(module, (nn.Conv2d, nn.Linear)):
                continue
            node = graph.nodes[name]
            module.weight.copy_(torch.from_numpy(np.array(node.weight)))
            module.bias.copy_(torch.from_numpy(np.array(node.bias)))
    return model


# --- evaluation --------------------------------------------------------------------------------------


class Evaluation(NamedTuple):
    accuracy: float  # fraction of correctly classified images
    samples: int
    layers: list[dict]  # per synaptic layer: name, events, synops, dense_macs (summed over all images)

    @property
    def activity(self) -> float:
        """synops / dense MACs over the whole network and all images."""
        dense = sum(layer["dense_macs"] for layer in self.layers)
        return sum(layer["synops"] for layer in self.layers) / dense if dense else 0.0


def evaluate(graph: ir.Graph, images: Tensor, labels: Tensor, encoding: str | Encoding = "direct",
             batch_size: int = 500, description: str = "evaluate", count: bool = True) -> Evaluation:
    """Classify ``images`` (N, *input_shape) in batches, as a Stream would one frame at a time (state
    cleared per image), and count events and synops per synaptic layer as a Trace does.

    A quantized graph with a radix encoding runs on the integer reference (``RadixExecutor``);
    otherwise the graph is stepped T times on the encoded batch and decoded by the encoding. A rate
    encoding draws its spikes from one generator seeded once, so runs are repeatable. With
    ``count=False`` the float path skips counting (the layers then report zero events and synops).
    """
    encoding = make_encoding(encoding) if isinstance(encoding, str) else encoding
    layers = graph.synaptic_layers()
    sources = [graph.predecessors(layer)[0] for layer in layers]
    counters = [LayerCounter(graph.nodes[layer], graph.shapes[source], graph.shapes[layer])
                for layer, source in zip(layers, sources, strict=True)]
    radix = RadixExecutor(graph, encoding.steps) if encoding.name == "radix" and radix_bits(graph) else None
    executor = GraphExecutor(graph) if radix is None else None
    events, synops = np.zeros(len(layers), np.int64), np.zeros(len(layers), np.int64)
    correct = 0
    encoder_state = encoding.init_state(tuple(images.shape[1:]))
    batches = range(0, images.shape[0], batch_size)
    with torch.no_grad():
        for start in progress(batches, total=len(batches), description=description):
            x, y = images[start:start + batch_size], labels[start:start + batch_size]
            if radix is not None:
                result = radix.run(radix.quantize(x))
                logits = result.output
                events += result.events.sum(0).numpy()
                synops += result.synops.sum(0).numpy()
            else:
                steps, encoder_state = encoding.encode(x, encoder_state)  # (T, B, *input_shape)
                executor.reset(x.shape[0])
                outputs = []
                for x_t in steps:
                    step = executor.step(x_t)
                    outputs.append(step.output)
                    for index, (source, counter) in enumerate(zip(sources, counters, strict=True) if count else ()):
                        fired = (step.wires[source] != 0).to(torch.float64)
                        events[index] += int(fired.sum())
                        synops[index] += round(float((fired * counter.fanout).sum()))
                logits = encoding.decode(torch.stack(outputs))
            correct += int((logits.argmax(1) == y).sum())
    summary = [{"name": layer, "events": int(e), "synops": int(s), "dense_macs": counter.dense_macs * len(images)}
               for layer, e, s, counter in zip(layers, events, synops, counters, strict=True)]
    return Evaluation(correct / len(images), len(images), summary)


def ann_accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(images[i:i + batch_size]).argmax(1) == labels[i:i + batch_size]).sum())
                      for i in range(0, len(images), batch_size))
    return correct / len(images)


def snn_accuracy(model: FangCNN, images: Tensor, labels: Tensor, steps: int = SNN_STEPS,
                 batch_size: int = 1000) -> float:
    with torch.no_grad():
        correct = sum(int((spiking_logits(model, images[i:i + batch_size], steps).argmax(1)
                           == labels[i:i + batch_size]).sum()) for i in range(0, len(images), batch_size))
    return correct / len(images)


# --- training ------------------------------------------------------------------------------------------


def train_ann(out_path: str | os.PathLike, seed: int = 0, config: TrainConfig = ANN_CONFIG,
              limit: int | None = None, test_limit: int | None = None) -> dict:
    """Train the ANN from seeded initial weights and write it to ``out_path``; returns metrics.
    ``limit`` and ``test_limit`` use the first training and test images only (smoke tests)."""
    torch.manual_seed(seed)
    model = FangCNN()
    images, labels = fashion_mnist_tensors("train", limit)
    test_images, test_labels = fashion_mnist_tensors("test", test_limit)

    def loss_fn(module: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(module(x), y)

    start = time.perf_counter()
    history = fit(model, images, labels, loss_fn, dataclasses.replace(config, seed=seed),
                  description="fmnist-cnn ANN")
    wall_s = time.perf_counter() - start
    accuracy = ann_accuracy(model, test_images, test_labels)
    status(f"fmnist-cnn ANN: test accuracy {accuracy:.4f} after {wall_s:.0f} s")
    save_weights(model, out_path, metadata={"model": "fmnist-cnn", "seed": seed, "test_accuracy": f"{accuracy:.4f}",
                                            "train_wall_s": f"{wall_s:.0f}", "command": "spikestream train fmnist-cnn"})
    return {"ann_test_accuracy": accuracy, "ann_loss": history, "ann_wall_s": wall_s}


def fine_tune_direct(ann_path: str | os.PathLike, out_path: str | os.PathLike, seed: int = 0,
                     steps: int = SNN_STEPS, config: TrainConfig = SNN_CONFIG, limit: int | None = None) -> dict:
    """The IF SNN for direct encoding at T = ``steps``: threshold-balance the ANN in ``ann_path``, then
    fine-tune it with surrogate-gradient BPTT; writes ``out_path`` and returns metrics."""
    from spikestream.passes import threshold_balancing

    images, labels = fashion_mnist_tensors("train", limit)
    test_images, test_labels = fashion_mnist_tensors("test")
    balanced = threshold_balancing(ann_graph(ann_path), images[:CALIBRATION_IMAGES], BALANCING_PERCENTILE)
    model = _copy_weights(balanced, FangCNN())
    before = snn_accuracy(model, test_images, test_labels, steps)
    status(f"fmnist-cnn SNN: direct T={steps} test accuracy {before:.4f} after threshold balancing")

    def loss_fn(module: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(spiking_logits(module, x, steps), y)

    start = time.perf_counter()
    history = fit(model, images, labels, loss_fn, dataclasses.replace(config, seed=seed),
                  description=f"fmnist-cnn SNN direct T={steps}")
    wall_s = time.perf_counter() - start
    accuracy = snn_accuracy(model, test_images, test_labels, steps)
    status(f"fmnist-cnn SNN: direct T={steps} test accuracy {accuracy:.4f} after fine-tuning ({wall_s:.0f} s)")
    save_weights(model, out_path, metadata={"model": "fmnist-cnn", "form": "IF SNN, threshold 1, reset by "
                                            "subtraction", "encoding": "direct", "steps": str(steps), "seed": seed,
                                            "test_accuracy": f"{accuracy:.4f}", "train_wall_s": f"{wall_s:.0f}",
                                            "command": "spikestream train fmnist-cnn"})
    return {"snn_balanced_accuracy": before, "snn_test_accuracy": accuracy, "snn_loss": history,
            "snn_wall_s": wall_s}


def train(out_path: str | os.PathLike, seed: int = 0) -> dict:
    """Reproduce the shipped weights: the ANN in ``out_path`` and the direct-T4 SNN beside it
    (``<stem>-direct-t4.safetensors``)."""
    out_path = Path(out_path)
    torch.set_num_threads(min(torch.get_num_threads(), 2))  # the documented timing is on 2 cores
    metrics = train_ann(out_path, seed)
    snn_path = out_path.with_name(f"{out_path.stem}-direct-t{SNN_STEPS}{out_path.suffix}")
    metrics.update(fine_tune_direct(out_path, snn_path, seed))
    metrics["snn_weights"] = str(snn_path)
    return metrics


register_model(ZooModel(
    name="fmnist-cnn",
    description="E3NE/Fang CNN on Fashion-MNIST (conv32-pool-conv32-pool-fc256-fc10); an IF SNN fine-tuned "
                "for direct encoding at T=4 ships beside it",
    task="classification",
    input_shape=INPUT_SHAPE,
    architecture=FangCNN,
    weights=ANN_WEIGHTS,
    train=train,
))
