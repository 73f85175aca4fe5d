"""Trace counts against a brute-force count over every synapse, and Trace save/load."""

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream import ir
from spikestream.engine import LayerCounter, Stream, Trace, TraceFormatError

TILE = (3, 4)


def brute_force_conv(events, weight, stride, padding, out_h, out_w, transpose=False):
    """Walk every (output neuron, input element, tap): count connections and non-zero-weight arrivals."""
    kh, kw = weight.shape[2:]
    synops = 0
    arrivals = {}
    for c, y, x in zip(*np.nonzero(events), strict=True):
        for ky, kx in itertools.product(range(kh), range(kw)):
            if transpose:  # input (y, x) with tap k lands on output y·s − p + k
                oy, ox = y * stride - padding + ky, x * stride - padding + kx
                ok = 0 <= oy < out_h and 0 <= ox < out_w
                outputs = range(weight.shape[1])
                w = lambda o, c=c, ky=ky, kx=kx: weight[c, o, ky, kx]  # noqa: E731
            else:  # output (oy, ox) reads input oy·s − p + k
                ny, nx = y + padding - ky, x + padding - kx
                ok = ny % stride == 0 and nx % stride == 0
                oy, ox = ny // stride, nx // stride
                ok = ok and 0 <= oy < out_h and 0 <= ox < out_w
                outputs = range(weight.shape[0])
                w = lambda o, c=c, ky=ky, kx=kx: weight[o, c, ky, kx]  # noqa: E731
            if not ok:
                continue
            for o in outputs:
                synops += 1
                if w(o) != 0:
                    arrivals[(o, oy, ox)] = arrivals.get((o, oy, ox), 0) + 1
    return synops, arrivals


@settings(max_examples=40, deadline=None)
@given(
    cin=st.integers(1, 3), cout=st.integers(1, 3), k=st.integers(1, 3), stride=st.integers(1, 2),
    padding=st.integers(0, 1), size=st.integers(3, 7), density=st.floats(0.0, 1.0), seed=st.integers(0, 10**6),
    transpose=st.booleans(),
)
def test_conv_counts_equal_brute_force(cin, cout, k, stride, padding, size, density, seed, transpose):
    rng = np.random.default_rng(seed)
    events = (rng.random((cin, size, size)) < density) * rng.standard_normal((cin, size, size))
    if transpose:
        weight = rng.integers(-1, 2, (cin, cout, k, k)).astype(np.float32)  # zeros included on purpose
        node = ir.ConvTranspose2d("c", weight=weight, stride=stride, padding=padding)
    else:
        if size + 2 * padding < k:
            return
        weight = rng.integers(-1, 2, (cout, cin, k, k)).astype(np.float32)
        node = ir.Conv2d("c", weight=weight, stride=stride, padding=padding)
    out_shape = node.infer_shape([(cin, size, size)])
    counter = LayerCounter(node, (cin, size, size), out_shape, tile=TILE)
    count = counter.count(torch.tensor(events, dtype=torch.float32)[None])
    synops, arrivals = brute_force_conv(events, weight, stride, padding, *out_shape[1:], transpose)
    assert count.events == np.count_nonzero(events)
    assert count.synops == synops
    per_channel = np.zeros(out_shape[0], np.int64)
    per_tile = np.zeros(counter.tiles_shape, np.int64)
    for (o, oy, ox), n in arrivals.items():
        per_channel[o] += n
        per_tile[oy // TILE[0], ox // TILE[1]] += n
    np.testing.assert_array_equal(count.channel_work.numpy(), per_channel)
    np.testing.assert_array_equal(count.tile_work.numpy(), per_tile)
    assert count.input_channel_work.sum().item() == synops


@settings(max_examples=30, deadline=None)
@given(fin=st.integers(1, 12), fout=st.integers(1, 6), density=st.floats(0, 1), seed=st.integers(0, 10**6))
def test_linear_counts_equal_brute_force(fin, fout, density, seed):
    rng = np.random.default_rng(seed)
    events = (rng.random(fin) < density) * rng.standard_normal(fin)
    weight = rng.integers(-1, 2, (fout, fin)).astype(np.float32)
    count = LayerCounter(ir.Linear("l", weight=weight), (fin,), (fout,)).count(torch.tensor(events)[None].float())
    assert count.events == np.count_nonzero(events)
    assert count.synops == np.count_nonzero(events) * fout  # linear: events × fan-out
    np.testing.assert_array_equal(count.channel_work.numpy(), (weight != 0).astype(int) @ (events != 0).astype(int))


def test_interior_synops_follow_the_design_formula():
    """Away from the borders a conv event fans out to exactly C_out·k_h·k_w/(s_h·s_w) synapses."""
    node = ir.Conv2d("c", weight=np.ones((5, 2, 3, 3)), padding=1)
    events = torch.zeros(1, 2, 9, 9)
    events[0, :, 3:6, 3:6] = 1.0
    count = LayerCounter(node, (2, 9, 9), (5, 9, 9)).count(events)
    assert count.synops == 18 * 5 * 3 * 3
    assert LayerCounter(node, (2, 9, 9), (5, 9, 9)).dense_macs == 5 * 2 * 9 * 81


def _small_stream(record_work=True):
    rng = np.random.default_rng(1)
    graph = ir.sequential((2, 8, 8), [
        ir.Conv2d("c1", weight=rng.standard_normal((3, 2, 3, 3)), padding=1), ir.IF("n1", threshold=0.5),
        ir.AvgPool2d("p"), ir.Flatten("f"), ir.Linear("fc", weight=rng.standard_normal((4, 48))),
    ])
    stream = Stream(graph, "rate", record_work=record_work, keyframe=3)
    for frame in rng.random((7, 2, 8, 8)).astype(np.float32):
        stream.process(frame)
    return stream


def test_stream_trace_sums_the_steps_and_round_trips(tmp_path):
    stream = _small_stream()
    trace = stream.trace
    assert trace.frames == 7 and trace.layers == ["c1", "fc"]
    np.testing.assert_array_equal(trace.keyframes, [True, False, False, True, False, False, True])
    # per-frame input events of fc are the IF spikes pooled over the 8 rate steps: bounded by 8 · 48
    assert (trace.events[:, 1] <= 8 * 48).all() and trace.events[:, 0].min() > 0
    assert trace.totals()["dense_macs"] == 7 * (3 * 2 * 9 * 64 + 4 * 48)
    path = trace.save(tmp_path / "trace.npz")
    loaded = Trace.load(path)
    np.testing.assert_array_equal(loaded.synops, trace.synops)
    np.testing.assert_array_equal(loaded.keyframes, trace.keyframes)
    for layer in trace.layers:
        np.testing.assert_array_equal(loaded.tile_work(layer), trace.tile_work(layer))
        np.testing.assert_array_equal(loaded.channel_work(layer), trace.channel_work(layer))
    assert loaded.layer_summary() == trace.layer_summary()
    assert not list(tmp_path.glob(".*partial*"))


def test_trace_without_work_is_small_and_says_so(tmp_path):
    trace = _small_stream(record_work=False).trace
    with pytest.raises(ValueError, match="record_work=False"):
        trace.tile_work("c1")
    assert Trace.load(trace.save(tmp_path / "t.npz")).frames == 7


@pytest.mark.parametrize("damage", ["missing", "truncated", "text", "foreign"])
def test_bad_trace_files_raise_one_clear_error(tmp_path, damage):
    good = _small_stream().trace.save(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    if damage == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "text":
        bad.write_text("not a trace")
    elif damage == "foreign":
        np.savez(bad, x=np.zeros(3))
    with pytest.raises(TraceFormatError, match="cannot read trace"):
        Trace.load(bad)
