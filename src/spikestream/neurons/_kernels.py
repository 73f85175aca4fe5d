"""Pure neuron step kernels: ``step(x, state, params) -> (out, state)``.

Parameters and state are NamedTuples of tensors; nothing here keeps hidden state, so the same
kernel runs in the dense engine, the sparse engine, training loops and tests. The time loop is
written once, in ``scan``. Parameter tensors broadcast against the state (see ``neuron_param``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor


def spike(v: Tensor, threshold: Tensor) -> Tensor:
    """Heaviside at the threshold: 1.0 where v ≥ θ."""
    return (v >= threshold).to(v.dtype)


def _reset(v: Tensor, s: Tensor, threshold: Tensor, v_reset: Tensor, subtract: bool) -> Tensor:
    if subtract:
        return v - s * threshold  # reset by subtraction keeps the residual charge
    return torch.where(s > 0, v_reset.expand_as(v) if v_reset.dim() else v_reset, v)


# --- integrate-and-fire ---------------------------------------------------------------------------


class MembraneState(NamedTuple):
    v: Tensor  # membrane potential


class IFParams(NamedTuple):
    threshold: Tensor  # θ
    r: Tensor  # input resistance
    v_reset: Tensor  # potential after a spike (reset to zero mode)
    subtract: bool = False  # reset by subtraction instead of to v_reset


def if_step(x: Tensor, state: MembraneState, params: IFParams) -> tuple[Tensor, MembraneState]:
    v = state.v + params.r * x  # integrate the input current
    s = spike(v, params.threshold)  # fire where the potential reaches threshold
    v = _reset(v, s, params.threshold, params.v_reset, params.subtract)
    return s, MembraneState(v)


# --- leaky integrate-and-fire ---------------------------------------------------------------------


class LIFParams(NamedTuple):
    gain: Tensor  # dt / τ, forward-Euler gain per step
    threshold: Tensor
    r: Tensor
    v_leak: Tensor
    v_reset: Tensor
    subtract: bool = False


def lif_step(x: Tensor, state: MembraneState, params: LIFParams) -> tuple[Tensor, MembraneState]:
    v = state.v + params.gain * (params.v_leak - state.v + params.r * x)  # leak toward v_leak, integrate input
    s = spike(v, params.threshold)
    v = _reset(v, s, params.threshold, params.v_reset, params.subtract)
    return s, MembraneState(v)


class CubaState(NamedTuple):
    i: Tensor  # synaptic current
    v: Tensor  # membrane potential


class CubaLIFParams(NamedTuple):
    gain_syn: Tensor  # dt / τ_syn
    gain_mem: Tensor  # dt / τ_mem
    threshold: Tensor
    r: Tensor
    v_leak: Tensor
    v_reset: Tensor
    w_in: Tensor
    subtract: bool = False


def cuba_lif_step(x: Tensor, state: CubaState, params: CubaLIFParams) -> tuple[Tensor, CubaState]:
    i = state.i + params.gain_syn * (params.w_in * x - state.i)  # synaptic current low-passes the input
    v = state.v + params.gain_mem * (params.v_leak - state.v + params.r * i)  # membrane integrates the current
    s = spike(v, params.threshold)
    v = _reset(v, s, params.threshold, params.v_reset, params.subtract)
    return s, CubaState(i, v)


# --- sigma-delta ----------------------------------------------------------------------------------


class SigmaDeltaState(NamedTuple):
    reconstruction: Tensor  # â, what the receiver has accumulated so far


class SigmaDeltaParams(NamedTuple):
    threshold: Tensor  # θ per layer (scalar) or per channel


def sigma_delta_step(a: Tensor, state: SigmaDeltaState, params: SigmaDeltaParams
                     ) -> tuple[Tensor, SigmaDeltaState]:
    """Send-on-delta against the reconstruction: Δ = a − â; y = Δ·[|Δ| ≥ θ]; â ← â + y.

    Returns the events y (graded, signed). Because â tracks exactly what was sent, |a − â| < θ
    after every step, and no error accumulates over time.
    """
    delta = a - state.reconstruction
    y = torch.where(delta.abs() >= params.threshold, delta, torch.zeros_like(delta))
    return y, SigmaDeltaState(state.reconstruction + y)


def sigma_step(y: Tensor, state: SigmaDeltaState) -> tuple[Tensor, SigmaDeltaState]:
    """The receiver side: accumulate events into the reconstruction."""
    total = state.reconstruction + y
    return total, SigmaDeltaState(total)


# --- radix (E3NE) ---------------------------------------------------------------------------------


class RadixState(NamedTuple):
    accumulator: Tensor  # S, integer-valued


class RadixParams(NamedTuple):
    synapse: Callable[[Tensor], Tensor]  # the linear map applied to one bit plane, e.g. an integer conv


def radix_accumulate_step(bits: Tensor, state: RadixState, params: RadixParams) -> tuple[Tensor, RadixState]:
    """One radix step, MSB first: S ← 2·S + W ⋆ s_t. After T steps S = W ⋆ q exactly."""
    accumulator = 2 * state.accumulator + params.synapse(bits)
    return accumulator, RadixState(accumulator)


def requantize(accumulator: Tensor, shift: int, bits: int) -> Tensor:
    """ReLU, arithmetic right shift by ``shift`` with round-half-up, clip to [0, 2^bits − 1].

    Works on integer tensors (exact) and on integer-valued float tensors.
    """
    if shift < 0 or bits < 1:
        raise ValueError(f"requantize needs shift >= 0 and bits >= 1, got shift={shift}, bits={bits}")
    value = torch.clamp(accumulator, min=0)
    if shift > 0:
        if value.is_floating_point():
            value = torch.floor((value + 2 ** (shift - 1)) / 2**shift)
        else:
            value = (value + (1 << (shift - 1))) >> shift
    return torch.clamp(value, max=2**bits - 1)


# --- the one time loop ----------------------------------------------------------------------------


def scan(step: Callable, xs: Iterable[Tensor] | Tensor, state, params=None) -> tuple[Tensor, object]:
    """Run ``step`` over the leading (time) axis of ``xs``; returns stacked outputs and the final state."""
    outputs = []
    for x in xs:
        out, state = step(x, state) if params is None else step(x, state, params)
        outputs.append(out)
    if not outputs:
        raise ValueError("scan needs at least one time step")
    return torch.stack(outputs), state


def neuron_param(value, shape: tuple[int, ...], dtype=torch.float32, device=None) -> Tensor:
    """Turn an IR parameter (scalar, per-channel (C,), or per-neuron ``shape``) into a tensor that
    broadcasts against a state of ``shape`` (batch dims in front are fine)."""
    tensor = torch.tensor(np.array(value), dtype=dtype, device=device)  # copy: IR arrays are read-only
    if tensor.dim() == 1 and len(shape) > 1 and tensor.shape[0] == shape[0] and tuple(shape) != tuple(tensor.shape):
        tensor = tensor.reshape(shape[0], *([1] * (len(shape) - 1)))  # per channel
    return tensor
