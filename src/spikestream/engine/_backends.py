"""Execution backends, one registry. ``dense`` is the exact reference; ``sparse`` must match it."""

from __future__ import annotations

from collections.abc import Callable

import torch

from spikestream import ir
from spikestream.engine._executor import GraphExecutor
from spikestream.engine._sparse import SparseBackend
from spikestream.errors import InputError

BackendFactory = Callable[[ir.Graph, torch.device | str], GraphExecutor]
BACKENDS: dict[str, BackendFactory] = {}


def register_backend(name: str):
    def register(factory: BackendFactory) -> BackendFactory:
        if name in BACKENDS:
            raise ValueError(f"backend {name!r} is registered twice")
        BACKENDS[name] = factory
        return factory
    return register


@register_backend("dense")
class DenseBackend(GraphExecutor):
    """Every node computes its whole output every step: the reference for outputs and counts."""


register_backend("sparse")(SparseBackend)


def make_backend(name: str, graph: ir.Graph, device: torch.device | str = "cpu") -> GraphExecutor:
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; choose one of: {', '.join(sorted(BACKENDS))}")
    return BACKENDS[name](graph, device)
