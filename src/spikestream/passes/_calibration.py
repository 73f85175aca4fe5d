"""Calibration for data-based conversion passes: run the float graph on sample inputs, keep statistics.

Shared by ``threshold_balancing`` and ``quantize``; both need, per ReLU, a robust maximum of its
activations over a calibration batch (a high percentile is less sensitive to outliers than the max).
"""

from __future__ import annotations

import numpy as np
import torch

from spikestream import ir

CALIBRATION_BATCH = 256  # samples per executor call, to bound memory


def calibration_tensor(samples, graph: ir.Graph) -> torch.Tensor:
    """Calibration inputs as float32 (N, *input_shape); uint8 images are scaled by 1/255."""
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    array = array.astype(np.float32)
    shape = graph.input_shape
    if array.ndim == len(shape) and len(shape) == 3 and shape[0] == 1:  # (N, H, W) grey images
        array = array[:, None]
    if array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != shape or array.shape[0] == 0:
        raise ir.IRError(f"calibration samples must have shape (N, *{shape}) with N >= 1, got {array.shape}")
    return torch.from_numpy(array)


def activation_ranges(graph: ir.Graph, samples, nodes: list[str], percentile: float = 99.9) -> dict[str, float]:
    """Per node in ``nodes``: the ``percentile`` of its output values over all calibration samples
    (100 = the maximum). The graph runs one step per sample, state cleared (direct, T = 1)."""
    from spikestream.engine import GraphExecutor  # the engine runs graphs; passes only transform them

    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percentile!r}")
    inputs = calibration_tensor(samples, graph)
    executor = GraphExecutor(graph)
    collected: dict[str, list[np.ndarray]] = {name: [] for name in nodes}
    with torch.no_grad():
        for start in range(0, inputs.shape[0], CALIBRATION_BATCH):
            batch = inputs[start:start + CALIBRATION_BATCH]
            executor.reset(batch.shape[0])
            values = executor.step(batch).values
            for name in nodes:
                collected[name].append(values[name].reshape(-1).numpy())
    ranges = {}
    for name, parts in collected.items():
        values = np.concatenate(parts)
        ranges[name] = float(values.max() if percentile == 100 else np.percentile(values, percentile))
    return ranges


def check_ann(graph: ir.Graph, pass_name: str) -> None:
    """Conversion passes take a float ReLU network: no neurons, no quantized nodes."""
    for node in graph:
        if isinstance(node, (ir.NeuronNode, ir.Requantize)):
            raise ir.UnsupportedError(f"{pass_name} converts a ReLU ANN, but node {node.name!r} is a {node.kind}")


def relu_after(graph: ir.Graph, layer: str) -> str | None:
    """The ReLU that rectifies synaptic ``layer``: its sole consumer, possibly behind max-pooling nodes
    that are each the sole consumer of the one before (ReLU and max-pooling commute). None when the
    layer's output is not rectified (e.g. the classifier head)."""
    name = layer
    while True:
        consumers = graph.successors(name)
        if len(consumers) != 1:
            return None
        name = consumers[0]
        if graph.nodes[name].kind == "ReLU":
            return name
        if graph.nodes[name].kind != "MaxPool2d":
            return None


def rectified_layers(graph: ir.Graph, pass_name: str) -> dict[str, str]:
    """ReLU name -> the synaptic layer it rectifies; every ReLU must rectify one (see ``relu_after``)."""
    owners = {relu_after(graph, layer): layer for layer in graph.synaptic_layers()}
    owners.pop(None, None)
    for node in graph:
        if node.kind == "ReLU" and node.name not in owners:
            raise ir.UnsupportedError(f"{pass_name}: ReLU {node.name!r} does not rectify a synaptic layer; every "
                                      "ReLU must follow a Conv2d/Linear (directly or behind max-pooling) as its "
                                      "only consumer")
    return owners


def inherited_scale(graph: ir.Graph, name: str, scales: dict[str, float]) -> float:
    """The unit of a node that only moves, pools or joins values: that of its inputs (which must agree)."""
    node = graph.nodes[name]
    found = {scales[p] for p in graph.predecessors(name)}
    if len(found) != 1:
        raise ir.UnsupportedError(f"{name!r} ({node.kind}) joins inputs of different scales {sorted(found)}; "
                                  "conversion supports joins of equally scaled tensors only")
    return found.pop()
