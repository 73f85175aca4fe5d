"""Bindings from the IR's stateful node kinds to the pure kernels in ``spikestream.neurons``.

Each binding knows how to turn a node into kernel parameters (using the graph's dt, the one
discretisation rule of ``ir._time``), how to make a zero state for a batch, and which step to run.
The step returns ``(value, wire)``: ``value`` is what downstream nodes compute with, ``wire`` is
what travels between layers and is counted as events. They differ only for sigma-delta, whose
receivers see the reconstruction â while the wire carries the deltas y.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from spikestream import ir, neurons
from spikestream.neurons import neuron_param


@dataclass(frozen=True)
class StatefulBinding:
    make_params: Callable[[ir.Node, tuple[int, ...], float, torch.device], object]
    init_state: Callable[[tuple[int, ...], torch.device], object]  # shape includes the batch dim
    step: Callable[[Tensor, object, object, Tensor | None], tuple[Tensor, Tensor, object]]


STATEFUL: dict[str, StatefulBinding] = {}


def stateful(kind: str):
    def register(binding: StatefulBinding) -> StatefulBinding:
        if kind in STATEFUL:
            raise ValueError(f"stateful binding for {kind!r} is registered twice")
        if kind not in ir.NODE_KINDS:
            raise ValueError(f"stateful binding for unknown node kind {kind!r}")
        STATEFUL[kind] = binding
        return binding
    return register


def _membrane(shape, device):
    return neurons.MembraneState(torch.zeros(shape, device=device))


def _spiking_step(kernel):
    def step(x, state, params, gate=None):
        spikes, state = kernel(x, state, params)
        return spikes, spikes, state
    return step


def _p(node, name, shape, device):
    return neuron_param(getattr(node, name), shape, device=device)


stateful("IF")(StatefulBinding(
    make_params=lambda node, shape, dt, device: neurons.IFParams(
        _p(node, "threshold", shape, device), _p(node, "r", shape, device), _p(node, "v_reset", shape, device),
        node.reset == "subtract"),
    init_state=_membrane,
    step=_spiking_step(neurons.if_step),
))

stateful("LIF")(StatefulBinding(
    make_params=lambda node, shape, dt, device: neurons.LIFParams(
        ir.decay_factor(_p(node, "tau", shape, device), dt), _p(node, "threshold", shape, device),
        _p(node, "r", shape, device), _p(node, "v_leak", shape, device), _p(node, "v_reset", shape, device),
        node.reset == "subtract"),
    init_state=_membrane,
    step=_spiking_step(neurons.lif_step),
))

stateful("CubaLIF")(StatefulBinding(
    make_params=lambda node, shape, dt, device: neurons.CubaLIFParams(
        ir.decay_factor(_p(node, "tau_syn", shape, device), dt),
        ir.decay_factor(_p(node, "tau_mem", shape, device), dt),
        _p(node, "threshold", shape, device), _p(node, "r", shape, device), _p(node, "v_leak", shape, device),
        _p(node, "v_reset", shape, device), _p(node, "w_in", shape, device), node.reset == "subtract"),
    init_state=lambda shape, device: neurons.CubaState(torch.zeros(shape, device=device),
                                                       torch.zeros(shape, device=device)),
    step=_spiking_step(neurons.cuba_lif_step),
))


def _sigma_delta_step(a, state, params, gate=None):
    """Send-on-delta; a ``gate`` (1 = send, 0 = hold) masks regions: a held pixel sends nothing and
    keeps its residual in a − â, so the accumulated change goes out once when it is unmasked."""
    y, new_state = neurons.sigma_delta_step(a, state, params)
    if gate is not None:
        y = y * gate
        new_state = neurons.SigmaDeltaState(state.reconstruction + y)
    return new_state.reconstruction, y, new_state


stateful("SigmaDelta")(StatefulBinding(
    make_params=lambda node, shape, dt, device: neurons.SigmaDeltaParams(_p(node, "threshold", shape, device)),
    init_state=lambda shape, device: neurons.SigmaDeltaState(torch.zeros(shape, device=device)),
    step=_sigma_delta_step,
))
