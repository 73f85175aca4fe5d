"""ANN → IF SNN conversion by data-based threshold balancing (layer-wise normalisation).

Rate-coded conversion (Diehl et al. 2015, Rueckauer et al. 2017): a ReLU unit with activation a is
replaced by an integrate-and-fire neuron with reset by subtraction whose firing rate, over T steps
of a direct or rate-coded input, approaches a/λ, where λ is a robust maximum of that layer's
activations measured on calibration data. With firing threshold 1, layer l's weights and bias become

    W_l ← W_l · λ_{l−1} / λ_l,    b_l ← b_l / λ_l,

λ_0 = 1 for the input (pixels in [0, 1]) and λ_l the *cumulative* scale of layer l's activation in the
ANN's own units, so every IF receives, per step, its ANN pre-activation divided by λ_l. A layer
without a ReLU after it (the classifier head) gets W ← W · λ_{l−1} and keeps its bias, so its output
averaged over the T steps estimates the ANN's logits.
"""

from __future__ import annotations

import numpy as np

from spikestream import ir
from spikestream.passes._calibration import (
    activation_ranges,
    check_ann,
    inherited_scale,
    rectified_layers,
    relu_after,
)
from spikestream.passes._registry import register_pass


@register_pass("relu_to_if")
def relu_to_if(graph: ir.Graph, threshold: float = 1.0, reset: str = "subtract") -> ir.Graph:
    """Replace every ReLU by an IF neuron of the same name (threshold θ, r = 1), weights untouched.

    For networks whose weights are already in spiking units (e.g. fine-tuned with surrogate
    gradients after ``threshold_balancing``).
    """
    nodes = [ir.IF(node.name, threshold=threshold, reset=reset) if node.kind == "ReLU" else node for node in graph]
    return graph.with_changes(nodes=nodes)


@register_pass("threshold_balancing")
def threshold_balancing(graph: ir.Graph, calibration, percentile: float = 99.9,
                        reset: str = "subtract", pool_spikes: bool = False) -> ir.Graph:
    """Convert a ReLU ANN into an IF SNN for direct or rate encoding (see the module docstring).

    ``calibration``: sample inputs (N, *input_shape), floats in [0, 1] or uint8 images.
    ``percentile``: the robust maximum λ of each ReLU's activations (100 = the maximum; 99.9 and
    99.99 are common). Every ReLU must follow a synaptic layer (Conv2d, Linear, ...), directly or
    behind max-pooling, as its only consumer. The result's IF nodes keep the ReLU names; the λ of
    each is recorded in the graph metadata as ``threshold_balancing.scales``, "relu=2.31;relu_1=...".

    Where max-pooling sits between a layer and its ReLU, the IF neuron takes the ReLU's place by
    default, so it fires on the max of the pooled synaptic currents. ``pool_spikes=True`` moves it
    in front of the pooling instead, which then ORs spikes. Both are exact for the ANN (ReLU and max
    commute); for a rate-coded input the per-step max of noisy currents is biased upward, a bias that
    does not average out over T, so rate codes want ``pool_spikes``.
    """
    check_ann(graph, "threshold_balancing")
    owners = rectified_layers(graph, "threshold_balancing")
    relus = [name for name in graph.order if name in owners]
    ranges = activation_ranges(graph, calibration, relus, percentile)
    scales: dict[str, float] = {}  # the ANN value that one unit of each node's output stands for
    replaced: dict[str, ir.Node] = {}
    for name in graph.order:
        node = graph.nodes[name]
        if isinstance(node, ir.Input):
            scales[name] = 1.0
        elif isinstance(node, ir.SynapticNode):
            (source,) = graph.predecessors(name)
            relu = relu_after(graph, name)
            ceiling = _positive(ranges[relu]) if relu is not None else 1.0  # λ_l; the head keeps ANN units
            weight = node.weight * (scales[source] / ceiling)
            bias = None if node.bias is None else node.bias / ceiling
            replaced[name] = node.replace(weight=weight.astype(np.float32),
                                          bias=None if bias is None else bias.astype(np.float32))
            scales[name] = ceiling
        elif node.kind == "ReLU":
            replaced[name] = ir.IF(name, threshold=1.0, reset=reset)
            scales[name] = inherited_scale(graph, name, scales)
        else:
            scales[name] = inherited_scale(graph, name, scales)
    metadata = {**graph.metadata, "threshold_balancing.scales": ";".join(f"{r}={ranges[r]:.6g}" for r in relus),
                "threshold_balancing.percentile": f"{percentile:g}"}
    edges = list(graph.edges)
    if pool_spikes:
        for relu, layer in owners.items():
            edges = _neuron_before_pooling(graph, edges, layer, relu)
    return graph.with_changes(nodes=[replaced.get(n.name, n) for n in graph.nodes.values()], edges=edges,
                              metadata=metadata)


def _neuron_before_pooling(graph: ir.Graph, edges: list[tuple[str, str]], layer: str, neuron: str
                           ) -> list[tuple[str, str]]:
    """Rewire layer → pool… → neuron → consumers into layer → neuron → pool… → consumers."""
    (first,) = graph.successors(layer)
    (last,) = graph.predecessors(neuron)
    if first == neuron:
        return edges  # nothing in between
    moved = []
    for source, target in edges:
        if (source, target) == (layer, first):
            moved.append((layer, neuron))
        elif (source, target) == (last, neuron):
            moved.append((neuron, first))
        elif source == neuron:
            moved.append((last, target))
        else:
            moved.append((source, target))
    return moved


def _positive(value: float) -> float:
    return value if value > 0 else 1.0  # a layer that never fires on the calibration data keeps its weights
