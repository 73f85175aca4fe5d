"""Pass registry: a pass takes a Graph and returns a Graph. Pipelines are named lists of passes."""

from __future__ import annotations

from collections.abc import Callable

from spikestream import ir

GraphPass = Callable[..., ir.Graph]
PASSES: dict[str, GraphPass] = {}


def register_pass(name: str) -> Callable[[GraphPass], GraphPass]:
    def register(fn: GraphPass) -> GraphPass:
        if name in PASSES:
            raise ValueError(f"pass {name!r} is registered twice")
        PASSES[name] = fn
        return fn
    return register


def run_pipeline(graph: ir.Graph, steps: list[tuple[str, dict]], verify: bool = True) -> ir.Graph:
    """Apply ``[(pass_name, options), ...]`` in order, verifying the graph after each pass."""
    for name, options in steps:
        if name not in PASSES:
            raise ValueError(f"unknown pass {name!r}; choose one of: {', '.join(sorted(PASSES))}")
        graph = PASSES[name](graph, **options)
        if verify:
            graph.verify()
    return graph
