"""Trace synops against NeuroBench's SynapticOperations metric on the same snnTorch network.

NeuroBench 2.3 declares torchaudio as a dependency (which has no CPU build here and would replace
nothing we need), so the Makefile installs it with --no-deps; its metric code imports neither.
NeuroBench counts, per layer and step, binarised inputs × binarised weights summed over outputs:
the events arriving over non-zero weights, i.e. our per-channel work; with non-zero weights that
equals our synops.
"""

import warnings

import nir
import numpy as np
import pytest
import torch

from spikestream.engine import simulate
from spikestream.frontend import load_nir

snn = pytest.importorskip("snntorch")
neurobench_models = pytest.importorskip("neurobench.models")
neurobench_workload = pytest.importorskip("neurobench.metrics.workload")

STEPS = 25


def test_trace_synops_equal_neurobench_synaptic_operations(tmp_path):
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(5)
    channels, size = 2, 10
    network = torch.nn.Sequential(
        torch.nn.Conv2d(channels, 6, 3, padding=1),
        snn.Leaky(beta=torch.full((6, size, size), 0.8), threshold=torch.full((6, size, size), 0.5),
                  reset_mechanism="zero", init_hidden=True),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 5 * 5, 10),
        snn.Leaky(beta=torch.full((10,), 0.8), threshold=torch.full((10,), 0.5), reset_mechanism="zero",
                  init_hidden=True, output=True),
    )
    with torch.no_grad():
        network[0].weight.mul_(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nir.write(tmp_path / "net.nir", export_to_nir(network, torch.rand(1, channels, size, size), ignore_dims=[0]))
    graph = load_nir(tmp_path / "net.nir")

    spikes_in = (torch.rand(1, STEPS, channels, size, size) < 0.3).float()  # (batch, time, C, H, W)
    model = neurobench_models.SNNTorchModel(network)
    model.register_hooks()
    metric = neurobench_workload.SynapticOperations()
    with torch.no_grad():
        predictions = model(spikes_in)
        result = metric(model, predictions, (spikes_in, torch.zeros(1)))
    model.close_hooks()

    outputs, trace = simulate(graph, spikes_in[0], trace=True)
    np.testing.assert_array_equal(outputs, predictions[0].numpy())  # same network, same spikes
    channel_work = sum(trace.channel_work(layer).sum() for layer in trace.layers)
    # NeuroBench splits operations into ACs (binary inputs: the spikes into conv) and MACs (graded
    # inputs: the average-pooled spikes into the linear layer); together they are our count.
    assert result["Effective_ACs"] > 0 and result["Effective_MACs"] > 0
    assert result["Effective_ACs"] + result["Effective_MACs"] == channel_work
    assert channel_work == trace.synops.sum()  # no zero weights here, so work == synops
    assert trace.synops.sum() > 0
