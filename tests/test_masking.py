"""Region masking: catch-up semantics against a send-on-delta oracle, region grids that do not divide the
frame, keep-fraction checks (library and CLI), the mask sources and their union, MGNet, the overlay."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream import ir
from spikestream.cli import main
from spikestream.engine import Stream
from spikestream.masking import (
    CELL,
    MASK_KINDS,
    MaskConfig,
    MaskError,
    MGNetMask,
    PreviousDetectionsMask,
    RegionGrid,
    RegionMasking,
    StaticMask,
    UnionMask,
    box_heatmap,
    cell_targets,
    check_keep,
    load_mgnet,
    make_masking,
    mask_overlay,
    region_recall,
)
from spikestream.metrics import FrameBoxes
from spikestream.passes import to_sigma_delta

THETA = 0.05  # input threshold of the test graphs


def input_graph(height: int, width: int) -> ir.Graph:
    """Input -> SigmaDelta (θ = THETA) -> 3x3 conv: the input layer's wire carries the gated deltas."""
    rng = np.random.default_rng(0)
    ann = ir.sequential((1, height, width), [ir.Conv2d("conv", weight=rng.standard_normal((2, 1, 3, 3)), padding=1)])
    return to_sigma_delta(ann, threshold=THETA)


def gated_send_on_delta(frames: np.ndarray, gates: np.ndarray, theta: float) -> np.ndarray:
    """Oracle: per pixel Δ = a − â; y = Δ if |Δ| ≥ θ and the pixel passes, else 0; â ← â + y."""
    reconstruction = np.zeros(frames.shape[1:])
    sent = np.zeros_like(frames)
    for t, (a, gate) in enumerate(zip(frames, gates, strict=True)):
        delta = a - reconstruction
        sent[t] = np.where(gate & (np.abs(delta) >= theta), delta, 0.0)
        reconstruction = reconstruction + sent[t]
    return sent


class ScheduledRegions(StaticMask):
    """A static source whose regions follow a fixed per-frame schedule (for the catch-up tests)."""

    def __init__(self, grid, schedule):
        super().__init__(grid, np.ones((grid.height, grid.width)))
        self.schedule = schedule

    def select(self, frame_index, frame, count):
        return self.schedule[frame_index]


def wire_of_input(stream: Stream) -> np.ndarray:
    node = stream.graph.successors("input")[0]
    wire = stream.last_step.wires[node]
    wire = wire.dense() if hasattr(wire, "dense") else wire  # the sparse backend's wires
    return wire[0, 0].cpu().numpy().astype(np.float64)


# --- catch-up semantics ----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["dense", "sparse"])
def test_a_held_pixel_sends_its_whole_change_once_when_it_passes_again(backend):
    height, width = 12, 20  # 8 px regions: a 2 x 3 grid with ragged last row and column
    grid = RegionGrid(height, width, 8)
    rng = np.random.default_rng(3)
    frames = np.cumsum(rng.normal(0, 0.03, (9, height, width)), axis=0) + 0.5  # drifting pixels
    held = np.ones(grid.shape, bool)
    held[1, 2] = False  # the ragged bottom-right region is held on frames 1..5
    schedule = {t: (held if 1 <= t <= 5 else np.ones(grid.shape, bool)) for t in range(9)}
    masking = RegionMasking(ScheduledRegions(grid, schedule), MaskConfig("static", keep=1.0, region=8))
    stream = Stream(input_graph(height, width), "sigma-delta", backend, mask=masking, calibrate=False)
    sent = []
    for frame in frames:
        stream.process(frame.astype(np.float32))
        sent.append(wire_of_input(stream))
    sent = np.stack(sent)  # (T, H, W)
    pixels = grid.to_pixels(held)
    region = ~pixels
    assert region.sum() == 4 * 4  # the ragged corner region: rows 8..11, columns 16..19
    assert np.all(sent[1:6][:, region] == 0)  # nothing leaves a held region
    # frame 6: the first frame the region passes again; the event is the whole change since frame 0 ...
    change = frames[6] - frames[0]
    big = region & (np.abs(frames[6] - frames[0].astype(np.float32)) >= THETA)
    np.testing.assert_allclose(sent[6][big], change[big].astype(np.float32), atol=1e-5)
    # ... so the sum of the events a pixel sent equals its value, within θ, once it has passed again
    np.testing.assert_allclose(sent[:7].sum(0)[region], frames[6][region], atol=THETA)
    gates = np.stack([pixels if 1 <= t <= 5 else np.ones_like(pixels) for t in range(9)])
    np.testing.assert_allclose(sent, gated_send_on_delta(frames.astype(np.float32), gates, THETA), atol=1e-5)
    assert stream.trace.events[1:6, 0].sum() == np.count_nonzero(sent[1:6])


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**16), height=st.integers(7, 17), width=st.integers(7, 17), region=st.integers(2, 7))
def test_masked_stream_matches_the_gated_send_on_delta_oracle(seed, height, width, region):
    rng = np.random.default_rng(seed)
    grid = RegionGrid(height, width, region)
    frames = np.clip(0.5 + np.cumsum(rng.normal(0, 0.04, (7, height, width)), axis=0), 0, 1).astype(np.float32)
    schedule = {t: rng.random(grid.shape) < 0.5 for t in range(7)}
    masking = RegionMasking(ScheduledRegions(grid, schedule), MaskConfig("static", keep=1.0, region=region))
    stream = Stream(input_graph(height, width), "sigma-delta", mask=masking)
    sent = []
    for frame in frames:
        stream.process(frame)
        sent.append(wire_of_input(stream))
    gates = np.stack([np.ones((height, width), bool)] + [grid.to_pixels(schedule[t]) for t in range(1, 7)])
    np.testing.assert_allclose(np.stack(sent), gated_send_on_delta(frames, gates, THETA), atol=1e-5)
    # the receiver's reconstruction is the sum of what was sent; it is within θ wherever the pixel passed
    total = np.stack(sent).sum(0)
    passed = gates[-1]
    assert np.all(np.abs(frames[-1] - total)[passed] < THETA + 1e-5)


# --- region grids that do not divide the frame ------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 40), width=st.integers(1, 40), size=st.integers(1, 40))
def test_every_pixel_belongs_to_exactly_one_region(height, width, size):
    if size > max(height, width):
        with pytest.raises(MaskError, match="larger than"):
            RegionGrid(height, width, size)
        return
    grid = RegionGrid(height, width, size)
    assert grid.shape == (-(-height // size), -(-width // size))
    ids = np.arange(grid.count).reshape(grid.shape)
    pixels = grid.to_pixels(ids)
    assert pixels.shape == (height, width)
    for r in range(grid.rows):  # brute force: the pixels of region (r, c) are exactly its block
        for c in range(grid.columns):
            block = np.zeros((height, width), bool)
            block[r * size:(r + 1) * size, c * size:(c + 1) * size] = True
            assert np.array_equal(pixels == ids[r, c], block)
    np.testing.assert_array_equal(grid.pool(np.ones((height, width)), "sum"), grid.region_pixels())
    np.testing.assert_array_equal(grid.pool(pixels, "max"), ids)
    assert grid.region_pixels().sum() == height * width


@pytest.mark.parametrize("kind", ["static", "dynamic", "union"])
@pytest.mark.parametrize(("height", "width", "region"), [(64, 64, 8), (64, 64, 10), (30, 44, 7), (64, 48, 9)])
def test_masks_have_the_frame_shape_and_keep_k_regions(kind, height, width, region):
    config = MaskConfig(kind, keep=0.4, region=region)
    masking = make_masking(config, (height, width))
    grid = masking.grid
    k = grid.kept_regions(0.4)
    assert k == int(np.floor(0.4 * grid.count + 0.5))
    rng = np.random.default_rng(0)
    frames = [torch.from_numpy(rng.random((1, height, width), dtype=np.float32)) for _ in range(3)]
    masks = [masking(i, f) for i, f in enumerate(frames)]
    assert all(m.shape == (height, width) and m.dtype == bool for m in masks)
    assert masks[0].all()  # frame 0 passes whole
    assert [int(r.sum()) for r in masking.history] == [grid.count, k, k]
    expected = 1 - (grid.count + 2 * k) / (3 * grid.count)
    assert masking.masked_fraction == pytest.approx(expected)
    pixel_share = [(grid.to_pixels(r)).mean() for r in masking.history]
    assert masking.masked_pixel_fraction == pytest.approx(1 - np.mean(pixel_share))
    stream = Stream(input_graph(height, width), "sigma-delta", mask=make_masking(config, (height, width)))
    for frame in frames:
        stream.process(frame)
    assert stream.trace.frames == 3


def test_a_mask_of_the_wrong_shape_is_refused():
    grid = RegionGrid(12, 20, 8)
    with pytest.raises(MaskError, match=r"does not fit a grid of \(2, 3\)"):
        grid.to_pixels(np.ones((3, 2), bool))
    with pytest.raises(MaskError, match="positive integer"):
        RegionGrid(12, 20, 0)


# --- the keep fraction ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 0.0, -0.1, 1.0001, 1.5, float("nan"), float("inf"), "much"])
def test_keep_outside_zero_one_is_rejected(keep):
    with pytest.raises(MaskError, match=r"keep fraction must be .*\(0, 1\]"):
        check_keep(keep)
    with pytest.raises(MaskError, match=r"keep fraction"):
        MaskConfig("union", keep=keep)


@pytest.mark.parametrize(("keep", "count"), [(1.0, 64), (0.4, 26), (0.2, 13), (1e-6, 1)])
def test_keep_inside_is_accepted(keep, count):
    assert check_keep(keep) == keep
    assert RegionGrid(64, 64, 8).kept_regions(keep) == count


@pytest.mark.parametrize(("argv", "pattern"), [
    (["--keep", "0"], "keep fraction must be in (0, 1]"),
    (["--keep", "1.2"], "keep fraction must be in (0, 1]"),
    (["--keep", "-0.4", "--mask", "static"], "keep fraction must be in (0, 1]"),
    (["--keep", "nan"], "keep fraction must be in (0, 1]"),
    (["--mask", "sometimes"], "unknown mask 'sometimes'"),
    (["--mask", "union", "--mask-region", "0"], "region size must be a positive"),
    (["--mask", "previous", "--model", "tiny-seg"], "needs a detection model"),
])
def test_cli_rejects_bad_mask_options_in_one_line(tmp_path, capsys, argv, pattern):
    np.save(tmp_path / "clip.npy", np.zeros((2, 64, 64), np.uint8))
    model = [] if "--model" in argv else ["--model", "det-synth"]
    code = main(["--quiet", "run", str(tmp_path / "clip.npy"), *model, *argv, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and pattern in err[0] and "Traceback" not in err[0], err


def test_cli_run_with_a_union_mask_writes_the_masking_section_and_overlay(tmp_path, capsys):
    from spikestream.models.synthetic_tasks import task_clips

    clip = task_clips("heldout", 1, 4, "shapes")[0]
    np.save(tmp_path / "clip.npy", clip.frames)
    out = tmp_path / "out"
    assert main(["--quiet", "run", str(tmp_path / "clip.npy"), "--model", "det-synth", "--mask", "union",
                 "--keep", "0.4", "--threshold", "0.1", "--target", "neuromorphic", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    masking = report["masking"]
    assert masking["kind"] == "union" and masking["grid"] == [8, 8] and masking["frames"] == 4
    assert masking["masked_fraction"] == pytest.approx(3 * (64 - 26) / (4 * 64))
    generator = masking["mask_generator"]
    assert 0 < generator["synops_per_frame"] <= generator["dense_macs_per_frame"] == 62_464
    total, detector = masking["with_mask_generator"], report["hardware"]
    assert total["energy_j_per_frame"] > detector["energy_j_per_frame"]
    assert total["latency_s"] > detector["latency_s"]
    assert total["edp"] == pytest.approx(total["energy_j_per_frame"] * total["latency_s"])
    html = (out / "report.html").read_text()
    assert "Region mask on clip.npy" in html
    assert "mask union" in capsys.readouterr().out


# --- sources ----------------------------------------------------------------------------------------


def test_box_heatmap_counts_covering_boxes():
    boxes = [np.array([[0, 0, 3, 2], [2, 1, 5, 4]], np.float32), np.array([[1.5, 0.5, 2.2, 3.9]], np.float32)]
    heat = box_heatmap(boxes, 5, 6)
    brute = np.zeros((5, 6))
    for frame in boxes:
        for x0, y0, x1, y1 in frame:
            for row in range(5):
                for column in range(6):
                    inside = np.floor(x0) <= column < np.ceil(x1) and np.floor(y0) <= row < np.ceil(y1)
                    brute[row, column] += inside
    np.testing.assert_allclose(heat, brute / brute.sum())
    with pytest.raises(MaskError, match="at least one box"):
        box_heatmap([np.zeros((0, 4))], 5, 6)


def test_static_mask_keeps_the_regions_holding_most_training_boxes():
    grid = RegionGrid(64, 64, 8)
    static = StaticMask(grid)  # det-synth's training heatmap
    kept = static.select(1, None, grid.kept_regions(0.4))
    # the synthetic lanes lie mostly in the lower half of the frame: so does the static mask
    assert kept[4:].sum() > 2 * kept[:4].sum()
    assert static.scores.sum() == pytest.approx(1.0)


def test_previous_detections_rank_regions_under_last_frames_boxes():
    grid = RegionGrid(64, 64, 8)
    found = FrameBoxes(np.array([[40.0, 40.0, 50.0, 46.0], [2, 2, 6, 6]]), np.array([0, 1]), np.array([0.9, 0.05]))
    source = PreviousDetectionsMask(grid, decode=lambda output: found, min_score=0.1, spread=0)
    source.observe(None)
    kept = source.select(1, None, 4)
    expected = np.zeros(grid.shape, bool)
    expected[5, 5] = expected[5, 6] = True  # the confident box covers regions (5, 5), (5, 6); the weak one none
    assert np.array_equal(kept & (source.region_scores(1, None) > 0), expected)
    source.reset()
    assert source.region_scores(2, None).max() == 0


def test_union_holds_each_sources_top_regions_within_one_budget():
    grid = RegionGrid(32, 32, 8)  # 16 regions
    heat = np.zeros((32, 32))
    heat[24:, :] = 1  # the static prior: the bottom row of regions
    static = StaticMask(grid, heat)
    box = FrameBoxes(np.array([[0.0, 0.0, 8.0, 8.0]]), np.array([0]), np.array([0.8]))
    previous = PreviousDetectionsMask(grid, decode=lambda output: box, spread=0)
    previous.observe(None)

    class Ranked(StaticMask):  # a dynamic source preferring the top-right region, then region order
        def region_scores(self, frame_index, frame):
            scores = -np.arange(16.0).reshape(4, 4)
            scores[0, 3] = 100
            return scores

    dynamic = Ranked(grid, heat)
    union = UnionMask([(static, 0.5), (previous, 0.25), (dynamic, 1.0)])
    kept = union.select(1, None, 8)
    assert kept.sum() == 8
    assert kept[3, :].all()  # static: its top 0.5 x 8 = 4 regions
    assert kept[0, 0]  # previous detections: the region under last frame's box
    assert kept[0, 3]  # the dynamic mask's best region
    with pytest.raises(MaskError, match="add up to at most 1"):
        UnionMask([(static, 0.8), (previous, 0.5), (dynamic, 1.0)])


def test_every_registered_kind_builds():
    assert set(MASK_KINDS) == {"none", "static", "dynamic", "previous", "union"}
    assert make_masking(MaskConfig("none", keep=1.0), (64, 64)) is None
    with pytest.raises(MaskError, match="needs a detection model"):
        make_masking(MaskConfig("previous"), (64, 64))


def test_refresh_sends_the_whole_frame_every_n_frames():
    masking = make_masking(MaskConfig("static", keep=0.25, refresh_every=3), (16, 16))
    frame = torch.zeros(1, 16, 16)
    passed = [masking(i, frame).all() for i in range(7)]
    assert passed == [True, False, False, True, False, False, True]


# --- MGNet ------------------------------------------------------------------------------------------


def test_cell_targets_mark_the_cells_a_box_touches():
    boxes = np.array([[5.0, 9.0, 9.0, 12.0], [60.0, 0.0, 64.0, 1.0]])
    target = cell_targets(boxes, 64, 64)
    brute = np.zeros((16, 16), np.float32)
    for x0, y0, x1, y1 in boxes:
        for row in range(16):
            for column in range(16):
                overlaps = x0 < (column + 1) * CELL and column * CELL < x1 and y0 < (row + 1) * CELL and row * CELL < y1
                brute[row, column] = max(brute[row, column], overlaps)
    np.testing.assert_array_equal(target, brute)


def test_mgnet_as_a_graph_matches_torch_and_its_ops_are_counted():
    module = load_mgnet()
    grid = RegionGrid(64, 64, 8)
    source = MGNetMask(grid, module, hold=0)
    frame = torch.rand(1, 64, 64, generator=torch.Generator().manual_seed(0))
    probabilities = source.probabilities(frame)  # (H, W): the cell probability under every pixel
    with torch.no_grad():
        expected = torch.sigmoid(module(frame[None]))[0, 0].numpy()
    np.testing.assert_allclose(probabilities[::CELL, ::CELL], expected, atol=1e-5)
    totals = source.trace.totals()
    assert source.trace.frames == 1
    assert totals["dense_macs"] == 64 * 64 * 4 + 16 * 16 * 4 * 4 * 9 + 16 * 16 * 4 * 9
    assert 64 * 64 * 4 <= totals["synops"] <= totals["dense_macs"]  # every pixel drives the 1x1 layer


def test_shipped_mgnet_finds_the_objects():
    from spikestream.models.synthetic_tasks import task_clips

    clips = task_clips("heldout", 2, 4, "fashion-mnist")
    recall = region_recall(load_mgnet(), clips, region=8, keep=0.4)
    assert recall["recall"] > 0.95  # regions holding part of a box, among MGNet's top 40 %


def test_mgnet_hold_keeps_a_region_one_frame_after_it_was_chosen():
    grid = RegionGrid(64, 64, 8)
    source = MGNetMask(grid, hold=1)
    bright = torch.full((1, 64, 64), 0.45)
    bright[0, 4:12, 4:12] = 0.95  # an object in region (0, 0) and (1, 1) corners
    empty = torch.full((1, 64, 64), 0.45)
    first = source.region_scores(1, bright)
    second = source.region_scores(2, empty)
    third = source.region_scores(3, empty)
    assert first[0, 0] > 0.5 and second[0, 0] == first[0, 0]  # held for one frame
    assert third[0, 0] < 0.5  # then let go


def test_overlay_tints_held_regions():
    grid = RegionGrid(16, 24, 8)
    regions = np.array([[True, False, True], [False, True, False]])
    frame = np.full((16, 24), 200, np.uint8)
    image = mask_overlay(frame, regions, grid, scale=2)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    kept_pixel, held_pixel = image[4, 4], image[4, 20]  # inside region (0, 0) and region (0, 1)
    assert tuple(kept_pixel) == (200, 200, 200)
    assert held_pixel[2] > held_pixel[0] and held_pixel.sum() < kept_pixel.sum()


def test_mask_generator_cost_composition():
    from spikestream.hw import HardwareResult
    from spikestream.masking import with_mask_generator

    def result(target, frame_s, latency_s, breakdown):
        return HardwareResult(target, None, 1, np.array([frame_s]), 1 / frame_s, latency_s, sum(breakdown.values()),
                              breakdown, 0.0)

    detector = result("neuromorphic", 1e-3, 6e-3, {"synops": 40e-6, "static": 100e-6})  # 0.1 W over 1 ms
    generator = result("neuromorphic", 2e-4, 6e-4, {"synops": 2e-6, "static": 20e-6})
    total = with_mask_generator(detector, generator)
    # same chip, pipelined: dynamic energies add, static power once over the slower stage; latencies add
    assert total["energy_j_per_frame"] == pytest.approx(40e-6 + 2e-6 + 0.1 * 1e-3)
    assert total["latency_s"] == pytest.approx(6.6e-3)
    assert total["edp"] == pytest.approx(total["energy_j_per_frame"] * 6.6e-3)
    assert total["fps"] == pytest.approx(1000)
    fpga = with_mask_generator(result("fpga", 1e-3, 1e-3, {"compute": 1e-4}), result("fpga", 2.5e-4, 2.5e-4,
                                                                                       {"compute": 1e-5}))
    assert fpga["fps"] == pytest.approx(800) and fpga["energy_j_per_frame"] == pytest.approx(1.1e-4)
