"""Sigma-delta networks against their ANN (the oracle): a provable error bound that shrinks with θ,
and per-layer reconstruction error below θ on every frame."""

import numpy as np
import pytest
import torch
from torch import nn

from spikestream import ir
from spikestream.data import moving_objects_clip
from spikestream.engine import Stream
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta

THETAS = (0.1, 0.03, 0.01)


class SmallReluCNN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv1 = nn.Conv2d(1, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.head = nn.Conv2d(8, 2, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        return self.head(self.up(torch.relu(self.conv2(x))))


@pytest.fixture(scope="module")
def network():
    return from_torch(SmallReluCNN().eval(), (1, 32, 32))


@pytest.fixture(scope="module")
def clip():
    return moving_objects_clip(frames=50, height=32, width=32, objects=3, seed=7)


def sup_norm_error_bound(graph: ir.Graph) -> float:
    """Worst-case |output − ANN output| (∞-norm) of a sigma-delta graph.

    Each SigmaDelta adds at most its θ of reconstruction error; a linear layer multiplies the error
    by its ∞-norm gain (max over outputs of Σ|w|); ReLU, max-pool, nearest upsampling and
    average-pooling do not increase it.
    """
    error: dict[str, float] = {}
    for node in graph:
        inputs = [error[p] for p in graph.predecessors(node.name)]
        if isinstance(node, ir.Input):
            error[node.name] = 0.0
        elif isinstance(node, ir.SigmaDelta):
            error[node.name] = inputs[0] + float(np.max(node.threshold))
        elif isinstance(node, ir.Conv2d):
            error[node.name] = inputs[0] * float(np.abs(node.weight).sum((1, 2, 3)).max())
        elif isinstance(node, (ir.ReLU, ir.MaxPool2d, ir.AvgPool2d, ir.Upsample, ir.Output)):
            error[node.name] = inputs[0]
        else:
            raise AssertionError(f"no bound for {node.kind}")
    return error[graph.output_names[0]]


def test_output_error_is_bounded_and_shrinks_with_theta(network, clip):
    ann = Stream(network, "direct")
    reference = np.stack([ann.process(frame) for frame in clip.frames])
    observed, bounds = [], []
    for theta in THETAS:
        sigma_delta = to_sigma_delta(network, threshold=theta)
        stream = Stream(sigma_delta, "sigma-delta")
        outputs = np.stack([stream.process(frame) for frame in clip.frames])
        bound = sup_norm_error_bound(sigma_delta)
        error = np.abs(outputs - reference).max(axis=(1, 2, 3))  # per frame
        assert (error < bound).all(), f"θ={theta}: error {error.max():.4g} exceeds bound {bound:.4g}"
        observed.append(error.max())
        bounds.append(bound)
    assert bounds[0] > bounds[1] > bounds[2]  # the bound is linear in θ
    assert observed[0] > observed[1] > observed[2]  # and the measured error follows it down
    assert observed[2] < 0.05 * np.abs(reference).max()


@pytest.mark.parametrize("theta", THETAS)
def test_every_layer_reconstructs_within_theta_on_every_frame(network, clip, theta):
    graph = to_sigma_delta(network, threshold=theta)
    stream = Stream(graph, "sigma-delta")
    sigma_delta_nodes = [n for n in graph.neuron_layers() if graph.nodes[n].kind == "SigmaDelta"]
    assert len(sigma_delta_nodes) == 3  # one before each synaptic layer: input, pool, upsample
    events = []
    for frame in clip.frames:
        stream.process(frame)
        for name in sigma_delta_nodes:
            activation = stream.last_step.values[graph.predecessors(name)[0]]
            reconstruction = stream.state[name].reconstruction
            assert (activation - reconstruction).abs().max().item() < theta
        events.append(stream.trace.events[-1].sum())
    # state persists across frames: after the first frame only changes are sent
    assert np.mean(events[1:]) < 0.5 * events[0]


def test_larger_theta_sends_fewer_events(network, clip):
    totals = []
    for theta in THETAS:
        stream = Stream(to_sigma_delta(network, threshold=theta), "sigma-delta")
        for frame in clip.frames:
            stream.process(frame)
        totals.append(stream.trace.totals()["synops"])
    assert totals[0] < totals[1] < totals[2]


def test_per_channel_thresholds_hold_per_channel(network, clip):
    graph = to_sigma_delta(network, threshold=0.05)
    assert to_sigma_delta(graph, threshold=0.05).text() == graph.text()  # idempotent
    source = graph.predecessors("conv2")[0]
    theta = np.linspace(0.01, 0.2, graph.shapes[source][0])
    graph = graph.replace_node(ir.SigmaDelta(source, threshold=theta))
    stream = Stream(graph, "sigma-delta")
    for frame in clip.frames[:20]:
        stream.process(frame)
        activation = stream.last_step.values[graph.predecessors(source)[0]]
        error = (activation - stream.state[source].reconstruction).abs()[0]  # (C, H, W)
        assert (error.amax((1, 2)).numpy() < theta).all()
