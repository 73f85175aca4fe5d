"""The sparse backend against the dense reference: same outputs (float tolerance), same Trace."""

import numpy as np
import pytest
import torch

from _sparse_networks import EncoderDecoder, SegmentationLike
from spikestream.data import moving_objects_clip
from spikestream.engine import Stream
from spikestream.engine._sparse import SparseWire
from spikestream.frontend import from_torch
from spikestream.passes import to_sigma_delta

# A flip of one event needs |Δ| within float rounding (~1e-7) of θ; allow a handful per million.
EVENT_MISMATCH_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def graph():
    return to_sigma_delta(from_torch(EncoderDecoder().eval(), (1, 48, 64)), threshold=0.03)


@pytest.fixture(scope="module")
def clip():
    return moving_objects_clip(frames=30, height=48, width=64, objects=2, seed=4)


def run(graph, frames, backend, **options):
    options.setdefault("calibrate", False)  # measured crossovers are for benchmarks; tests use the default
    stream = Stream(graph, "sigma-delta", backend=backend, **options)
    return np.stack([stream.process(f) for f in frames]), stream


@pytest.mark.parametrize("record_work", [False, True])
def test_sparse_matches_dense(graph, clip, record_work):
    dense_out, dense = run(graph, clip.frames, "dense", record_work=record_work)
    sparse_out, sparse = run(graph, clip.frames, "sparse", record_work=record_work)
    np.testing.assert_allclose(sparse_out, dense_out, atol=1e-4, rtol=1e-4)
    mismatched = np.abs(sparse.trace.events - dense.trace.events).sum()
    assert mismatched <= EVENT_MISMATCH_TOLERANCE * dense.trace.events.sum() + 2
    np.testing.assert_array_equal(sparse.trace.events[:, 0], dense.trace.events[:, 0])  # input layer exact
    np.testing.assert_allclose(sparse.trace.synops, dense.trace.synops, rtol=1e-4, atol=50)
    if record_work:
        for layer in dense.trace.layers:
            np.testing.assert_allclose(sparse.trace.tile_work(layer), dense.trace.tile_work(layer), rtol=1e-3,
                                       atol=50)
    assert sparse.trace.totals()["activity"] < 0.5  # the clip is mostly static: sparse paths were taken


def test_sparse_paths_are_taken(graph, clip):
    stream = Stream(graph, "sigma-delta", backend="sparse", record_work=False)
    assert set(stream.crossovers) == {"c1", "c2", "c3", "c4", "t", "head"}
    assert all(0.0 <= c <= 1.0 for c in stream.crossovers.values())
    kinds = []
    for frame in clip.frames[:5]:
        result = stream.process(frame)
        kinds.append([type(w).__name__ for w in stream.last_step.wires.values()])
    assert result.shape == (2, 48, 64)
    assert any("SparseWire" in k for k in kinds[1:])  # after the first frame events travel as rows


def test_forced_dense_fallback_matches(graph, clip):
    """With every crossover at zero the sparse backend runs the dense path everywhere."""
    stream = Stream(graph, "sigma-delta", backend="sparse", calibrate=False)
    for run_ in stream.backend.runs.values():
        run_.crossover = 0.0
    dense_out, _ = run(graph, clip.frames[:8], "dense")
    forced = np.stack([stream.process(f) for f in clip.frames[:8]])
    np.testing.assert_allclose(forced, dense_out, atol=1e-5)


def test_sigma_delta_state_is_exposed_and_masks_work(graph, clip):
    mask = np.ones((48, 64), bool)
    mask[:, :32] = False
    dense_out, dense = run(graph, clip.frames[:10], "dense", mask=mask)
    sparse_out, sparse = run(graph, clip.frames[:10], "sparse", mask=mask)
    np.testing.assert_allclose(sparse_out, dense_out, atol=1e-4)
    for name in graph.neuron_layers():
        np.testing.assert_allclose(sparse.state[name].reconstruction.numpy(),
                                   dense.state[name].reconstruction.numpy(), atol=1e-4)


def test_segmentation_network_matches_dense_through_every_sparse_rule(clip):
    graph = to_sigma_delta(from_torch(SegmentationLike().eval(), (1, 48, 64)), threshold=0.03)
    dense_out, dense = run(graph, clip.frames, "dense")
    stream = Stream(graph, "sigma-delta", backend="sparse", calibrate=False)
    backend = stream.backend
    (upsampled,) = [n for n in graph.neuron_layers() if graph.predecessors(n) == ["up"]]
    rowwise_bilinear = 0
    sparse_out = []
    for frame in clip.frames:
        sparse_out.append(stream.process(frame))
        wire = stream.last_step.wires[upsampled]
        assert isinstance(wire, SparseWire) and wire.block == (2, 2)  # one event row per upsampled block
        rowwise_bilinear += backend.runs["out"].dirty is not None
    np.testing.assert_allclose(np.stack(sparse_out), dense_out, atol=1e-4, rtol=1e-4)
    np.testing.assert_array_equal(stream.trace.events[:, 0], dense.trace.events[:, 0])
    np.testing.assert_allclose(stream.trace.synops, dense.trace.synops, rtol=1e-4, atol=50)
    assert {tuple(r.node.kind for r in chain) for chain in backend._chains.values()} == {
        ("ReLU", "SigmaDelta"), ("Add", "ReLU", "SigmaDelta")}
    assert rowwise_bilinear > 0
    np.testing.assert_allclose(stream.state[upsampled].reconstruction.numpy(),
                               dense.state[upsampled].reconstruction.numpy(), atol=1e-4)


def test_block_wire_densifies_to_its_blocks():
    wire = SparseWire(torch.tensor([1]), torch.tensor([[2.0]]), (1, 4, 4), block=(2, 2))
    expected = torch.zeros(1, 1, 4, 4)
    expected[0, 0, :2, 2:] = 2.0
    assert torch.equal(wire.dense(), expected)


def test_sparse_wire_densifies():
    wire = SparseWire(torch.tensor([0, 5]), torch.tensor([[1.0, 2.0], [3.0, 0.0]]), (2, 2, 3))
    dense = wire.dense()
    assert dense.shape == (1, 2, 2, 3)
    assert dense[0, :, 0, 0].tolist() == [1.0, 2.0] and dense[0, :, 1, 2].tolist() == [3.0, 0.0]
    assert dense.abs().sum() == 6.0


def test_a_calibration_measured_by_one_stream_can_be_given_to_another(graph, clip):
    from spikestream.errors import InputError

    measured = Stream(graph, "sigma-delta", backend="sparse")
    assert set(measured.calibration) == {"c1", "c2", "c3", "c4", "t", "head"}
    given = Stream(graph, "sigma-delta", backend="sparse", calibrate=measured.calibration)
    assert given.crossovers == measured.crossovers and given.calibration == measured.calibration
    for name, plan in given.backend._convolutions.items():  # every number the dense-or-sparse choice reads
        other = measured.backend._convolutions[name]
        assert (plan.row_cost, plan.full_work) == (other.row_cost, other.full_work)
        assert given.backend.runs[name].crossover == measured.backend.runs[name].crossover
    np.testing.assert_array_equal(np.stack([given.process(f) for f in clip.frames]),
                                  np.stack([measured.process(f) for f in clip.frames]))
    with pytest.raises(InputError, match="no convolution fed by events is called relu"):
        Stream(graph, "sigma-delta", backend="sparse", calibrate={"relu": {"crossover": 0.5, "row_cost": 9.0}})
