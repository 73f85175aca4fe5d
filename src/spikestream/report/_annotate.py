"""Annotated video frames, drawn with OpenCV: the segmentation over the frame, and a live activity panel.

``annotate_frame`` returns one RGB frame: on the left the input frame with the predicted mask
(translucent red, outlined) and the reference outline (green) where known; on the right, for the
current frame, one bar per synaptic layer (synops / dense MACs on a log axis, 0.1 % to 100 %) and
a sparkline of the whole network's activity over the clip with a cursor at the current frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
MASK_RGB = (230, 40, 40)
REFERENCE_RGB = (40, 220, 60)
PANEL_RGB = (24, 24, 28)
GRID_RGB = (62, 62, 70)
BAR_RGB = (255, 160, 40)
TEXT_RGB = (235, 235, 235)
DIM_RGB = (130, 130, 140)
LOG_FLOOR = 1e-3  # bars and sparkline on a log axis from 0.1 % ...
LOG_DECADES = 3  # ... to 100 %
BASE_HEIGHT = 288  # panel layout in pixels at this height; larger frames scale it


def _log_fraction(activity: float) -> float:
    """Position of an activity (synops / dense MACs) on the log axis, 0 at LOG_FLOOR, 1 at 100 %."""
    return float(np.clip(np.log10(max(activity, LOG_FLOOR) / LOG_FLOOR) / LOG_DECADES, 0.0, 1.0))


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.2g}%" if fraction < 0.01 else f"{100 * fraction:.1f}%"


class _Pen:
    """Draws text and shapes in layout units (pixels at BASE_HEIGHT), scaled to the canvas."""

    def __init__(self, canvas: np.ndarray):
        self.canvas = canvas
        self.unit = canvas.shape[0] / BASE_HEIGHT
        self.thickness = max(1, round(self.unit))

    def xy(self, x: float, y: float) -> tuple[int, int]:
        return round(x * self.unit), round(y * self.unit)

    def text(self, text: str, x: float, y: float, color=TEXT_RGB, size: float = 0.4, backing: bool = False) -> None:
        """Text with its baseline's left end at (x, y); ``backing``: on a darkened box, readable over video."""
        scale, origin = size * self.unit, self.xy(x, y)
        if backing:
            (width, height), baseline = cv2.getTextSize(text, FONT, scale, self.thickness)
            pad = self.thickness * 3
            box = self.canvas[max(origin[1] - height - pad, 0):origin[1] + baseline + pad // 2,
                              max(origin[0] - pad, 0):origin[0] + width + pad]
            box[:] = (box * 0.35).astype(np.uint8)
        cv2.putText(self.canvas, text, origin, FONT, scale, color, self.thickness, cv2.LINE_AA)

    def line(self, start: tuple[float, float], end: tuple[float, float], color=GRID_RGB) -> None:
        cv2.line(self.canvas, self.xy(*start), self.xy(*end), color, self.thickness, cv2.LINE_AA)


def overlay_mask(image: np.ndarray, mask: np.ndarray, reference: np.ndarray | None = None,
                 scale: int = 1) -> np.ndarray:
    """Gray (H, W) or RGB (H, W, 3) uint8 → RGB, ``scale`` times larger, with the mask filled translucent
    red and outlined; the reference mask, if given, outlined in green."""
    rgb = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image.copy()
    masks = [np.asarray(m, np.uint8) for m in (mask, reference) if m is not None]
    if scale != 1:
        size = (rgb.shape[1] * scale, rgb.shape[0] * scale)
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
        masks = [cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in masks]
    filled = masks[0].astype(bool)
    rgb[filled] = (0.5 * rgb[filled] + 0.5 * np.array(MASK_RGB, np.float32)).astype(np.uint8)
    for m, color in zip(masks, (MASK_RGB, REFERENCE_RGB), strict=False):
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(rgb, contours, -1, color, scale, cv2.LINE_AA)
    return rgb


def activity_panel(size: tuple[int, int], layer_names: Sequence[str], layer_activity: Sequence[float],
                   activity_series: Sequence[float], index: int) -> np.ndarray:
    """An RGB (H, W) panel: per-layer bars for frame ``index`` and the network's activity sparkline."""
    height, width = size
    panel = np.full((height, width, 3), PANEL_RGB, np.uint8)
    pen = _Pen(panel)
    w = width / pen.unit  # panel width in layout units; the height is BASE_HEIGHT
    left, right = 80, w - 56

    def x_of(activity: float) -> float:
        return left + (right - left) * _log_fraction(activity)

    pen.text("synops / dense MACs per layer", 10, 18, size=0.45)
    bars_top = 30
    bar_h = max(6.0, min(16.0, (BASE_HEIGHT / 2 - bars_top) / max(len(layer_names), 1) - 4))
    bars_bottom = bars_top + len(layer_names) * (bar_h + 4)
    for decade in range(LOG_DECADES + 1):  # grid lines at 0.1 %, 1 %, 10 %, 100 %
        x = x_of(LOG_FLOOR * 10 ** decade)
        pen.line((x, bars_top - 4), (x, bars_bottom))
        pen.text(f"{100 * LOG_FLOOR * 10 ** decade:g}%", x - 10, bars_bottom + 11, DIM_RGB, 0.32)
    for row, (name, activity) in enumerate(zip(layer_names, layer_activity, strict=True)):
        y = bars_top + row * (bar_h + 4)
        pen.text(name[:11], 10, y + bar_h - 3, size=0.36)
        cv2.rectangle(panel, pen.xy(left, y), pen.xy(max(x_of(activity), left + 1), y + bar_h), BAR_RGB, -1)
        pen.text(_percent(activity), right + 6, y + bar_h - 3, size=0.36)

    # the whole network's activity over the clip, on the same log scale (vertical), cursor at `index`
    series = np.asarray(activity_series, dtype=float)
    top, bottom = bars_bottom + 40, BASE_HEIGHT - 16
    pen.text(f"network: {_percent(series[index])} of dense MACs", 10, top - 10, size=0.42)
    cv2.rectangle(panel, pen.xy(left, top), pen.xy(right, bottom), GRID_RGB, pen.thickness)
    for decade in range(LOG_DECADES + 1):
        y = bottom - (bottom - top) * decade / LOG_DECADES
        pen.text(f"{100 * LOG_FLOOR * 10 ** decade:g}%", 36, y + 4, DIM_RGB, 0.32)
    steps = np.arange(len(series)) / max(len(series) - 1, 1)
    xs = left + (right - left) * steps
    ys = bottom - (bottom - top) * np.array([_log_fraction(a) for a in series])
    points = (np.stack([xs, ys], 1) * pen.unit).round().astype(np.int32)
    cv2.polylines(panel, [points], False, DIM_RGB, pen.thickness, cv2.LINE_AA)
    cv2.polylines(panel, [points[:index + 1]], False, BAR_RGB, pen.thickness, cv2.LINE_AA)
    cv2.circle(panel, tuple(int(v) for v in points[index]), 3 * pen.thickness, BAR_RGB, -1, cv2.LINE_AA)
    pen.text(f"frame {index + 1} of {len(series)}", right - 80, BASE_HEIGHT - 4, DIM_RGB, 0.32)
    return panel


def annotate_frame(image: np.ndarray, mask: np.ndarray, layer_names: Sequence[str],
                   layer_activity: Sequence[float], activity_series: Sequence[float], index: int, *,
                   reference: np.ndarray | None = None, reference_name: str = "teacher", caption: str = "",
                   scale: int = 1) -> np.ndarray:
    """One RGB frame of the annotated video: the overlay (left, ``scale`` times the frame) beside the
    activity panel (right, as large)."""
    left = overlay_mask(image, mask, reference, scale)
    pen = _Pen(left)
    pen.text(caption, 8, BASE_HEIGHT - 8, size=0.42, backing=True)
    pen.text("red: network" + (f", green: {reference_name}" if reference is not None else ""), 8, 16, size=0.42,
             backing=True)
    right = activity_panel(left.shape[:2], layer_names, layer_activity, activity_series, index)
    return np.concatenate([left, right], axis=1)
