"""Executes a Graph one time step at a time, holding the state of every stateful node."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from spikestream import ir
from spikestream.engine._ops import DENSE_OPS, node_tensors
from spikestream.engine._stateful import STATEFUL


class StepResult(NamedTuple):
    output: Tensor  # (B, *output_shape) value of the single Output node
    values: dict[str, Tensor]  # what each node's consumers compute with
    wires: dict[str, Tensor]  # what each node sends (the events); differs from value for sigma-delta


def check_executable(graph: ir.Graph) -> None:
    supported = sorted(set(DENSE_OPS) | set(STATEFUL))
    for node in graph:
        if node.kind not in supported:
            raise ir.UnsupportedError(f"node {node.name!r} of kind {node.kind} cannot be executed; "
                                      f"supported: {', '.join(supported)}")


class GraphExecutor:
    """Dense reference execution: every node computes its whole output at every step."""

    def __init__(self, graph: ir.Graph, device: torch.device | str = "cpu"):
        check_executable(graph)
        self.graph = graph
        self.device = torch.device(device)
        self.output_name = graph.output_names[0] if len(graph.output_names) == 1 else None
        if self.output_name is None:
            raise ir.IRError(f"a stream needs exactly one Output node, found {graph.output_names}")
        self.input_name = graph.input_names[0] if len(graph.input_names) == 1 else None
        if self.input_name is None:
            raise ir.IRError(f"a stream needs exactly one Input node, found {graph.input_names}")
        self.params: dict[str, object] = {}
        for node in graph:
            if node.kind in STATEFUL:
                self.params[node.name] = STATEFUL[node.kind].make_params(
                    node, graph.shapes[node.name], graph.dt, self.device)
            else:
                self.params[node.name] = node_tensors(node, self.device)
        self.state: dict[str, object] = {}
        self.batch = 0

    def reset(self, batch: int = 1) -> None:
        """Zero every stateful node for a batch of ``batch`` independent samples."""
        self.batch = batch
        self.state = {
            node.name: STATEFUL[node.kind].init_state((batch, *self.graph.shapes[node.name]), self.device)
            for node in self.graph if node.kind in STATEFUL
        }

    def step(self, x: Tensor, gates: dict[str, Tensor] | None = None) -> StepResult:
        """Advance every node by one time step. ``x``: (B, *input_shape). ``gates`` optionally masks
        the events of named sigma-delta nodes (1 = send, 0 = hold)."""
        if self.batch != x.shape[0]:
            self.reset(x.shape[0])
        values: dict[str, Tensor] = {}
        wires: dict[str, Tensor] = {}
        for name in self.graph.order:
            node = self.graph.nodes[name]
            inputs = [values[p] for p in self.graph.predecessors(name)] if node.arity != 0 else [x]
            binding = STATEFUL.get(node.kind)
            if binding is None:
                values[name] = wires[name] = DENSE_OPS[node.kind](node, self.params[name], inputs)
            else:
                gate = gates.get(name) if gates else None
                values[name], wires[name], self.state[name] = binding.step(
                    inputs[0], self.state[name], self.params[name], gate)
        return StepResult(values[self.output_name], values, wires)
