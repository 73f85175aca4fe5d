"""ANN → sigma-delta conversion."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from spikestream import ir
from spikestream.passes._registry import register_pass

Threshold = float | np.ndarray | Mapping[str, float | np.ndarray]


@register_pass("to_sigma_delta")
def to_sigma_delta(graph: ir.Graph, threshold: Threshold = 0.05, input_threshold: float | None = None) -> ir.Graph:
    """Put a SigmaDelta encoder on the output of every node that feeds a synaptic layer.

    Each synaptic layer then receives only the changes of its input (graded events y) and, as a
    linear map, accumulates W·y into exactly W·â + b: the ANN evaluated on reconstructions â that
    stay within θ of the true activations. Nonlinearities (ReLU, max-pool) run on the accumulated
    values, so the network reproduces its ANN as θ → 0.

    ``threshold``: θ for every inserted node, or a mapping from the *source* node name to θ
    (scalar or per channel). ``input_threshold``: θ for the node after the input (default: θ).
    Existing SigmaDelta nodes are kept (the pass is idempotent).
    """
    sources: list[str] = []
    for layer in graph.synaptic_layers():
        source = graph.predecessors(layer)[0]
        if graph.nodes[source].kind != "SigmaDelta" and source not in sources:
            sources.append(source)
    for source in sources:
        if isinstance(threshold, Mapping):
            if source not in threshold:
                raise ValueError(f"no sigma-delta threshold given for {source!r}")
            theta = threshold[source]
        elif source in graph.input_names and input_threshold is not None:
            theta = input_threshold
        else:
            theta = threshold
        name = f"{source}_sd"
        while name in graph.nodes:
            name += "_"
        graph = graph.insert_after(source, ir.SigmaDelta(name, threshold=theta))
    return graph
