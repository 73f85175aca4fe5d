"""Neuron kernels: radix accumulation against an exact integer convolution, requantisation against
integer arithmetic, sigma-delta invariants, and IF/LIF/CubaLIF against their recurrences."""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from spikestream import neurons
from spikestream.encoding import radix_encode


def integer_conv2d(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Valid cross-correlation in int64 (the oracle): q (C_in, H, W), w (C_out, C_in, k, k)."""
    windows = sliding_window_view(q, w.shape[2:], axis=(1, 2))  # (C_in, H', W', k, k)
    return np.einsum("chwyx,ocyx->ohw", windows.astype(np.int64), w.astype(np.int64))


@settings(max_examples=50, deadline=None)
@given(bits=st.integers(1, 8), cin=st.integers(1, 3), cout=st.integers(1, 3), k=st.integers(1, 3),
       size=st.integers(3, 8), weight_bits=st.integers(2, 8), seed=st.integers(0, 2**31))
def test_radix_accumulator_equals_integer_convolution(bits, cin, cout, k, size, weight_bits, seed):
    rng = np.random.default_rng(seed)
    q = rng.integers(0, 2**bits, (cin, size, size))
    w = rng.integers(-(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1), (cout, cin, k, k))
    planes = radix_encode(torch.tensor(q / (2**bits - 1), dtype=torch.float32), bits)  # (T, C, H, W), MSB first
    weight = torch.tensor(w, dtype=torch.float64)  # float64 holds these integers exactly
    params = neurons.RadixParams(lambda s: F.conv2d(s[None].to(torch.float64), weight)[0])
    state = neurons.RadixState(torch.zeros((cout, size - k + 1, size - k + 1), dtype=torch.float64))
    _, final = neurons.scan(neurons.radix_accumulate_step, planes, state, params)
    np.testing.assert_array_equal(final.accumulator.numpy().astype(np.int64), integer_conv2d(q, w))


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.integers(-(2**20), 2**20), min_size=1, max_size=30), shift=st.integers(0, 12),
       bits=st.integers(1, 12))
def test_requantize_is_relu_round_half_up_shift_clip(values, shift, bits):
    expected = [min(max(0, (v + (1 << shift >> 1)) >> shift if shift else v), 2**bits - 1) for v in values]
    as_int = neurons.requantize(torch.tensor(values, dtype=torch.int64), shift, bits)
    as_float = neurons.requantize(torch.tensor(values, dtype=torch.float64), shift, bits)
    assert as_int.tolist() == expected
    assert as_float.to(torch.int64).tolist() == expected


@settings(max_examples=60, deadline=None)
@given(theta=st.floats(0.001, 1.0), steps=st.integers(1, 40), seed=st.integers(0, 2**31))
def test_sigma_delta_tracks_within_theta_and_sends_what_it_reconstructs(theta, steps, seed):
    signal = torch.tensor(np.random.default_rng(seed).standard_normal((steps, 16)).cumsum(0), dtype=torch.float64)
    params = neurons.SigmaDeltaParams(torch.tensor(theta, dtype=torch.float64))
    events, state = neurons.scan(neurons.sigma_delta_step, signal,
                                 neurons.SigmaDeltaState(torch.zeros(16, dtype=torch.float64)), params)
    reconstruction = events.cumsum(0)  # what a receiver that accumulates the events holds
    assert ((signal - reconstruction).abs() < theta).all()
    torch.testing.assert_close(reconstruction[-1], state.reconstruction)
    sent = events != 0
    assert (events[sent].abs() >= theta).all()  # nothing below threshold is ever sent


def test_if_resets_to_zero_or_by_subtraction():
    x = torch.tensor([0.6, 0.6, 0.6, 0.6, 0.0])
    zero = neurons.IFParams(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(0.0), subtract=False)
    subtract = zero._replace(subtract=True)
    state = neurons.MembraneState(torch.zeros(()))
    spikes_zero, _ = neurons.scan(neurons.if_step, x, state, zero)
    spikes_sub, last = neurons.scan(neurons.if_step, x, state, subtract)
    # zero reset: 0.6, 1.2→0, 0.6, 1.2→0 ; subtraction: 0.6, 1.2→0.2, 0.8, 1.4→0.4, 0.4
    assert spikes_zero.tolist() == [0, 1, 0, 1, 0]
    assert spikes_sub.tolist() == [0, 1, 0, 1, 0]
    assert abs(last.v.item() - 0.4) < 1e-6


def test_lif_is_beta_decay_and_cuba_matches_its_recurrence():
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.random((25, 8)) * 0.6, dtype=torch.float32)
    beta, dt = 0.8, 1e-4
    tau = dt / (1 - beta)  # snnTorch's Leaky(beta) as written to NIR
    params = neurons.LIFParams(torch.tensor(dt / tau), torch.tensor(1.0), torch.tensor(tau / dt),
                               torch.tensor(0.0), torch.tensor(0.0))
    spikes, _ = neurons.scan(neurons.lif_step, x, neurons.MembraneState(torch.zeros(8)), params)
    v, expected = torch.zeros(8), []
    for x_t in x:
        v = beta * v + x_t
        s = (v >= 1.0).float()
        v = torch.where(s > 0, torch.zeros_like(v), v)
        expected.append(s)
    torch.testing.assert_close(spikes, torch.stack(expected))

    a, b = 0.3, 0.5
    cuba = neurons.CubaLIFParams(torch.tensor(a), torch.tensor(b), torch.tensor(0.7), torch.tensor(2.0),
                                 torch.tensor(0.1), torch.tensor(0.0), torch.tensor(1.5), subtract=True)
    spikes, _ = neurons.scan(neurons.cuba_lif_step, x, neurons.CubaState(torch.zeros(8), torch.zeros(8)), cuba)
    i, v, expected = torch.zeros(8), torch.zeros(8), []
    for x_t in x:
        i = (1 - a) * i + a * 1.5 * x_t
        v = (1 - b) * v + b * (0.1 + 2.0 * i)
        s = (v >= 0.7).float()
        v = v - 0.7 * s
        expected.append(s)
    torch.testing.assert_close(spikes, torch.stack(expected))
    assert spikes.sum() > 0


def test_per_channel_parameters_broadcast_over_space():
    threshold = neurons.neuron_param(np.array([0.5, 2.0]), (2, 3, 3))
    assert threshold.shape == (2, 1, 1)
    x = torch.ones(1, 2, 3, 3)
    spikes, _ = neurons.if_step(x, neurons.MembraneState(torch.zeros_like(x)),
                                neurons.IFParams(threshold, torch.tensor(1.0), torch.tensor(0.0)))
    assert spikes[0, 0].all() and not spikes[0, 1].any()
