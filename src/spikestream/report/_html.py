"""report.html: one self-contained page (inline CSS, plots as base64 PNG), readable without a server.

``write_html_report`` renders a job's ``report.json`` dictionary and its Trace: a summary, the
per-layer table, and the plots of ``spikestream.report._plots``. Nothing is fetched from anywhere.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spikestream.engine import Trace
from spikestream.report import _plots
from spikestream.report._json import atomic_write_text

HTML_NAME = "report.html"

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 960px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.8em; }
.subtitle { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.summary td:first-child { color: #555; }
figure { margin: 1.2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
.note { background: #fff6e0; border-left: 4px solid #e0a800; padding: 0.5em 0.8em; }
"""


@dataclass(frozen=True)
class ReportImage:
    title: str
    caption: str
    png: bytes  # the PNG file's bytes


def png_from_array(image: np.ndarray) -> bytes:
    """An RGB (H, W, 3) or gray (H, W) uint8 image → PNG bytes."""
    import cv2

    array = np.ascontiguousarray(image)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as PNG")
    return encoded.tobytes()


def _img(image: ReportImage) -> str:
    data = base64.b64encode(image.png).decode("ascii")
    return (f'<figure><img alt="{html.escape(image.title)}" src="data:image/png;base64,{data}">'
            f"<figcaption><b>{html.escape(image.title)}.</b> {html.escape(image.caption)}</figcaption></figure>")


def _number(value) -> str:
    if isinstance(value, bool) or value is None:
        return html.escape(str(value))
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return html.escape(str(value))


def _summary_rows(report: dict) -> list[tuple[str, str]]:
    totals = report.get("totals", {})
    rows = [("model", report.get("model")), ("input", report.get("input")), ("encoding", report.get("encoding")),
            ("threshold θ", report.get("threshold")), ("frames", report.get("frames")),
            ("wall time (s)", report.get("wall_s")), ("frames per second", report.get("fps")),
            ("events", totals.get("events")), ("synops", totals.get("synops")),
            ("dense MACs", totals.get("dense_macs")), ("synops / dense MACs", totals.get("activity"))]
    for key, label in (("iou_vs_teacher", "IoU vs teacher (sigma-delta)"),
                       ("iou_ann_vs_teacher", "IoU vs teacher (ANN)"),
                       ("iou_vs_ground_truth", "IoU vs ground truth"),
                       ("accuracy", "accuracy")):
        if report.get(key) is not None:
            rows.append((label, report[key]))
    return [(label, _number(value)) for label, value in rows if value is not None]


def _layer_table(report: dict) -> str:
    head = "<tr><th>layer</th><th>events</th><th>synops</th><th>dense MACs</th><th>synops / dense MACs</th></tr>"
    rows = []
    for layer in report.get("layers", []):
        activity = layer["synops"] / layer["dense_macs"] if layer.get("dense_macs") else 0.0
        rows.append(f"<tr><td>{html.escape(str(layer['name']))}</td><td>{_number(layer['events'])}</td>"
                    f"<td>{_number(layer['synops'])}</td><td>{_number(layer['dense_macs'])}</td>"
                    f"<td>{100 * activity:.2f} %</td></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def render_html(report: dict, images: Sequence[ReportImage], notes: Sequence[str] = ()) -> str:
    """The HTML text of a report: summary, notes, per-layer table, then the images in order."""
    title = f"spikestream {report.get('command', '')}: {report.get('model', '')}"
    summary = "".join(f"<tr><td>{html.escape(label)}</td><td>{value}</td></tr>"
                      for label, value in _summary_rows(report))
    notes_html = "".join(f'<p class="note">{html.escape(note)}</p>' for note in notes)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="subtitle">spikestream {html.escape(str(report.get("version", "")))} · '
        f"{html.escape(str(report.get('input', '')))}</p>",
        notes_html,
        f'<h2>Summary</h2><table class="summary">{summary}</table>',
        "<h2>Per layer</h2>",
        _layer_table(report),
        "<h2>Plots</h2>",
        *(_img(image) for image in images),
        "</body></html>",
        "",
    ])


COMPARISON_NAME = "index.html"


def render_comparison_html(title: str, subtitle: str, rows: Sequence[dict], columns: Sequence[str],
                           images: Sequence[ReportImage], links: Sequence[str | None] = ()) -> str:
    """One page comparing the runs of a sweep or batch: a row per run (``columns`` of it, a link to its own
    report when ``links`` gives one) and the comparison plots, all inline."""
    links = list(links) or [None] * len(rows)
    head = "".join(f"<th>{html.escape(column)}</th>" for column in columns)
    body = []
    for row, link in zip(rows, links, strict=True):
        cells = "".join(f"<td>{_number(row.get(column))}</td>" for column in columns)
        report = f'<a href="{html.escape(link)}">report</a>' if link else ""
        body.append(f"<tr>{cells}<td>{report}</td></tr>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="subtitle">{html.escape(subtitle)}</p>',
        f"<h2>Runs</h2><table><tr>{head}<th></th></tr>{''.join(body)}</table>",
        "<h2>Plots</h2>" if images else "",
        *(_img(image) for image in images),
        "</body></html>",
        "",
    ])


def trace_images(trace: Trace, background: np.ndarray | None = None, layer: str | None = None,
                 output_size: tuple[int, int] | None = None, iou: Sequence[float] | None = None,
                 first_frame: int = 0) -> list[ReportImage]:
    """The standard plots of a Trace, captioned (``first_frame``: video index of the trace's first frame)."""
    layer = layer or trace.layers[0]
    images = [
        ReportImage("Events per layer per frame",
                    "Non-zero values arriving at each synaptic layer's input, frame by frame (log scale). "
                    "The first frame sends the whole scene; after it only changes travel.",
                    _plots.events_per_layer_plot(trace, first_frame)),
        ReportImage("Activity per frame",
                    "Synaptic operations of the whole network divided by the dense ANN's multiply-accumulates"
                    + (", with the per-frame IoU against the teacher." if iou is not None else "."),
                    _plots.activity_per_frame_plot(trace, iou, first_frame)),
        ReportImage("Dense MACs vs synops per layer",
                    "What the equivalent ANN computes on every frame (grey) against the synaptic operations the "
                    "event-driven network does (orange), summed over all frames.",
                    _plots.synops_vs_dense_plot(trace)),
    ]
    if trace.record_work and trace.frames:
        images.append(ReportImage(
            f"Activity map of {layer}",
            "Where in the image events happen: the per-tile work of the layer (input events × non-zero weights "
            "landing in each output tile), summed over all frames but the first (which sends the whole scene)"
            + (", laid over the mean frame." if background is not None else "."),
            _plots.activity_map_plot(trace, layer, background, output_size)))
    return images


def write_html_report(out_dir: str | os.PathLike, report: dict, trace: Trace, *,
                      images_before: Sequence[ReportImage] = (), images_after: Sequence[ReportImage] = (),
                      background: np.ndarray | None = None, layer: str | None = None,
                      output_size: tuple[int, int] | None = None, iou: Sequence[float] | None = None,
                      first_frame: int = 0, notes: Sequence[str] = ()) -> Path:
    """Write ``out_dir/report.html`` atomically: the report, the Trace's plots and any extra images."""
    images = [*images_before, *trace_images(trace, background, layer, output_size, iou, first_frame),
              *images_after]
    return atomic_write_text(Path(out_dir) / HTML_NAME, render_html(report, images, notes))
