"""report.html is one self-contained file whose plots show what they claim; the demo writes all its outputs."""

import base64
import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from torch import nn

from spikestream import Stream, from_torch
from spikestream.data import SampleDataError, video_info
from spikestream.passes import to_sigma_delta
from spikestream.report import (
    REPORT_NAME,
    activity_map,
    annotate_frame,
    render_html,
    trace_images,
    write_html_report,
    write_report,
)

DESIGN_KEYS = {"command", "version", "input", "model", "encoding", "frames", "wall_s", "fps", "layers", "totals"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:|//|ftp:|file:)""", re.IGNORECASE)
EMBEDDED = re.compile(r"""src="data:image/png;base64,([A-Za-z0-9+/=]+)\"""")


class _Net(nn.Module):
    """conv stride 2 → ReLU → conv: the first layer's 8x8 output tiles cover 16x16 input pixels."""

    def __init__(self):
        super().__init__()
        self.first = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.second = nn.Conv2d(4, 2, 3, padding=1)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))


def _blob_frames(frames=6, size=64):
    """A static textured scene in which only a square in the bottom-right quadrant moves."""
    rng = np.random.default_rng(0)
    scene = rng.uniform(0.2, 0.8, (size, size)).astype(np.float32)
    clips = []
    for t in range(frames):
        frame = scene.copy()
        frame[40:52, 36 + 2 * t:48 + 2 * t] = 1.0
        clips.append(frame)
    return clips


@pytest.fixture(scope="module")
def trace():
    torch.manual_seed(0)
    graph = to_sigma_delta(from_torch(_Net().eval(), (1, 64, 64)), threshold=0.01)
    stream = Stream(graph, "sigma-delta", tile=(8, 8))
    for frame in _blob_frames():
        stream.process(frame)
    return stream.trace


def _report(trace, **extra):
    return {"command": "test", "version": "0", "input": "blob", "model": "net", "encoding": "sigma-delta",
            "frames": trace.frames, "wall_s": 1.0, "fps": trace.frames, "layers": trace.layer_summary(),
            "totals": trace.totals(), **extra}


def _check_self_contained(text: str, images: int) -> None:
    HTMLParser().feed(text)  # well-formed enough for a parser
    assert not EXTERNAL.search(text), EXTERNAL.search(text).group(0)
    assert "<link" not in text and "<script" not in text and "@import" not in text
    embedded = EMBEDDED.findall(text)
    assert len(embedded) >= images
    assert all(base64.b64decode(data).startswith(PNG_SIGNATURE) for data in embedded)


def test_activity_map_is_where_events_happen(trace):
    work = activity_map(trace, "first")  # (4, 4) tiles of 16x16 input pixels; frame 0 left out
    assert work.shape == (4, 4)
    moving = np.zeros((4, 4), bool)
    moving[2:4, 2:4] = True  # rows 40-51 and columns 36-57 of the input
    assert work[moving].sum() > 0 and work[~moving].sum() == 0
    assert trace.tile_work("first")[0].min() > 0  # the first frame, which sends everything, is the excluded one


def test_html_report_is_self_contained(tmp_path, trace):
    background = (_blob_frames()[0] * 255).astype(np.uint8)
    path = write_html_report(tmp_path, _report(trace, iou_vs_teacher=0.5), trace, background=background,
                             output_size=(32, 32), iou=[0.5] * trace.frames, notes=["a <note> & more"])
    text = path.read_text()
    _check_self_contained(text, images=4)
    assert "a &lt;note&gt; &amp; more" in text  # user strings are escaped
    for title in ("Events per layer per frame", "Activity map of first", "Dense MACs vs synops per layer"):
        assert title in text
    assert not list(tmp_path.glob(".*partial*"))


def test_plots_are_png_and_render_without_optional_parts(trace):
    images = trace_images(trace)
    assert len(images) == 4 and all(image.png.startswith(PNG_SIGNATURE) for image in images)
    _check_self_contained(render_html(_report(trace), images), images=4)


def test_annotated_frame_shows_the_mask_and_the_panel():
    image = np.full((48, 64), 100, np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[10:20, 10:30] = True
    frame = annotate_frame(image, mask, ["a", "b"], [0.5, 0.01], [1.0, 0.1, 0.05], 1, reference=mask, scale=2)
    assert frame.shape == (96, 256, 3) and frame.dtype == np.uint8
    inside = frame[30, 40]  # (15, 20) in the frame, twice as large
    assert inside[0] > inside[1] and inside[0] > inside[2]  # tinted red
    assert (frame[60:90, 10:50] == 100).all()  # untouched background


def test_demo_falls_back_to_a_synthetic_clip_and_writes_all_outputs(tmp_path, monkeypatch, capsys):
    from spikestream import jobs

    def unavailable(name, download=True):
        raise SampleDataError(f"sample video '{name}' is not available: test")

    monkeypatch.setattr("spikestream.data.find_sample_video", unavailable)
    report = jobs.demo(tmp_path, frames=4)
    assert "synthetic" in capsys.readouterr().err  # it says so
    saved = json.loads((tmp_path / REPORT_NAME).read_text())
    assert set(saved) >= DESIGN_KEYS and saved["frames"] == 4 == report["frames"]
    assert set(saved["totals"]) >= {"events", "synops", "dense_macs", "activity"}
    assert all(set(layer) >= {"name", "events", "synops", "dense_macs"} for layer in saved["layers"])
    assert saved["input"].startswith("synthetic:") and 0 <= saved["iou_vs_ground_truth"] <= 1
    text = (tmp_path / "report.html").read_text()
    _check_self_contained(text, images=5)  # the annotated still and the four plots
    assert "synthetic moving-objects clip" in text  # the fallback note
    assert video_info(tmp_path / "demo.mp4").frames == 4
    assert (tmp_path / "trace.npz").is_file()
    assert not list(tmp_path.glob(".*partial*"))


def test_report_json_keeps_the_design_keys(tmp_path, trace):
    write_report(tmp_path, _report(trace))
    assert set(json.loads((tmp_path / REPORT_NAME).read_text())) >= DESIGN_KEYS
