"""Plots of a Trace, rendered to PNG bytes with matplotlib's Agg canvas (no display, no pyplot state).

Every function takes a ``Trace`` (and what it needs besides) and returns the PNG file's bytes, ready
to be embedded in the HTML report or written to disk.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FuncFormatter, MaxNLocator

from spikestream.engine import Trace

DPI = 100
WIDE = (9.0, 3.6)  # inches: full-width plots of the HTML report


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _layer_colors(count: int) -> list:
    cmap = colormaps["viridis"]
    return [cmap(i / max(count - 1, 1) * 0.9) for i in range(count)]


def _frame_axis(axes, first_frame: int) -> None:
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("frame" if first_frame == 0 else "frame (index in the video)")


def events_per_layer_plot(trace: Trace, first_frame: int = 0) -> bytes:
    """Input events of every synaptic layer, frame by frame (log scale); keyframes marked.

    ``first_frame``: the video index of the trace's first frame, for the x axis.
    """
    figure = Figure(figsize=WIDE)
    axes = figure.add_subplot()
    frames = first_frame + np.arange(trace.frames)
    events = trace.events  # (frames, layers)
    for index, (name, color) in enumerate(zip(trace.layers, _layer_colors(len(trace.layers)), strict=True)):
        axes.plot(frames, np.maximum(events[:, index], 0.5), color=color, linewidth=1.3, label=name)
    for frame in np.flatnonzero(trace.keyframes):
        axes.axvline(first_frame + frame, color="0.6", linewidth=0.8, linestyle=":")
    axes.set_yscale("log")
    _frame_axis(axes, first_frame)
    axes.set_ylabel("input events per frame")
    axes.set_title("Events per layer per frame")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(fontsize=8, ncol=min(len(trace.layers), 4), loc="upper right", framealpha=0.8)
    return _png(figure)


def activity_per_frame_plot(trace: Trace, iou: Sequence[float] | None = None, first_frame: int = 0) -> bytes:
    """Synops / dense MACs of the whole network per frame; optionally a per-frame IoU on a second axis."""
    figure = Figure(figsize=WIDE)
    axes = figure.add_subplot()
    frames = first_frame + np.arange(trace.frames)
    macs = int(trace.dense_macs.sum())
    activity = trace.synops.sum(1) / macs if macs else np.zeros(trace.frames)
    axes.plot(frames, 100 * activity, color="tab:blue", linewidth=1.4, label="synops / dense MACs")
    axes.set_yscale("log")
    percent = FuncFormatter(lambda value, _: f"{value:g} %")
    axes.yaxis.set_major_formatter(percent)
    axes.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g} %" if str(value)[0] in "25" else ""))
    _frame_axis(axes, first_frame)
    axes.set_ylabel("synops / dense MACs", color="tab:blue")
    axes.set_title("Network activity per frame (100 % = the dense ANN)")
    axes.grid(True, alpha=0.3)
    if iou is not None:
        twin = axes.twinx()
        twin.plot(frames[:len(iou)], iou, color="tab:red", linewidth=1.0, alpha=0.8, label="IoU vs teacher")
        twin.set_ylim(0, 1)
        twin.set_ylabel("IoU vs teacher", color="tab:red")
    return _png(figure)


def synops_vs_dense_plot(trace: Trace) -> bytes:
    """Per layer, the dense ANN's MACs beside the synops actually done (log scale), summed over frames."""
    summary = trace.layer_summary()
    names = [layer["name"] for layer in summary]
    dense = np.array([layer["dense_macs"] for layer in summary], dtype=float)
    synops = np.array([layer["synops"] for layer in summary], dtype=float)
    figure = Figure(figsize=WIDE)
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.bar(positions - 0.2, np.maximum(dense, 1), width=0.4, color="0.65", label="dense MACs (ANN)")
    axes.bar(positions + 0.2, np.maximum(synops, 1), width=0.4, color="tab:orange", label="synops (sigma-delta)")
    for x, d, s in zip(positions, dense, synops, strict=True):
        if d:
            axes.annotate(f"{100 * s / d:.1f} %", (x + 0.2, max(s, 1)), textcoords="offset points", xytext=(0, 3),
                          ha="center", fontsize=8)
    axes.set_xticks(positions, names, rotation=20 if len(names) > 6 else 0, fontsize=8)
    axes.set_yscale("log")
    axes.set_ylabel(f"operations over {trace.frames} frames")
    axes.set_title("Dense MACs vs synops per layer (label: synops / dense MACs)")
    axes.grid(True, axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(figure)


def activity_map(trace: Trace, layer: str | None = None) -> np.ndarray:
    """(tiles_y, tiles_x) work of ``layer`` (default: the first synaptic layer) per output tile, summed over
    frames. The first frame is left out when there are more: a stateful network sends the whole scene on
    it, which would lay a uniform floor under the map."""
    work = trace.tile_work(layer or trace.layers[0])  # (frames, tiles_y, tiles_x)
    return work[1 if len(work) > 1 else 0:].sum(0)


def activity_map_plot(trace: Trace, layer: str | None = None, background: np.ndarray | None = None,
                      output_size: tuple[int, int] | None = None) -> bytes:
    """Where the work happens: ``activity_map`` of ``layer`` (default: the first), as a heat map.

    ``background``: an image (H, W) or (H, W, 3) the map is laid over, stretched to the same field of
    view. ``output_size``: the layer's output (H, W); tiles at its edges may be partial, so without it
    the tiles are assumed to cover the image exactly.
    """
    layer = layer or trace.layers[0]
    work = activity_map(trace, layer).astype(float)  # (tiles_y, tiles_x)
    tiles_y, tiles_x = work.shape
    tile_h, tile_w = trace.tile
    figure = Figure(figsize=(7.2, 4.6))
    axes = figure.add_subplot()
    if background is not None:
        height, width = background.shape[:2]
        covered_h, covered_w = (tiles_y * tile_h, tiles_x * tile_w)
        out_h, out_w = output_size or (covered_h, covered_w)
        extent = (0, width * covered_w / out_w, height * covered_h / out_h, 0)  # partial edge tiles overhang
        full_scale = 255 if background.dtype == np.uint8 else 1
        axes.imshow(background, cmap="gray", extent=(0, width, height, 0), vmin=0, vmax=full_scale)
        # colour and opacity both grow with the work, so quiet tiles leave the scene visible
        norm = Normalize(0, max(work.max(), 1))
        rgba = colormaps["inferno"](norm(work))
        rgba[..., 3] = 0.15 + 0.7 * norm(work)
        axes.imshow(rgba, extent=extent, interpolation="nearest")
        image = ScalarMappable(norm, colormaps["inferno"])
        axes.set_xlim(0, width)
        axes.set_ylim(height, 0)
        axes.set_xlabel("x (input pixels)")
        axes.set_ylabel("y (input pixels)")
    else:
        image = axes.imshow(work, cmap="inferno", interpolation="nearest")
        axes.set_xlabel(f"tile x ({tile_w} output pixels)")
        axes.set_ylabel(f"tile y ({tile_h} output pixels)")
    colorbar = figure.colorbar(image, ax=axes, fraction=0.035, pad=0.02)
    colorbar.formatter = EngFormatter()  # 1.2M rather than an offset "1e6" above the bar
    colorbar.update_ticks()
    colorbar.set_label("events × non-zero weights")
    frames = f"frames 2-{trace.frames}" if trace.frames > 1 else "1 frame"
    axes.set_title(f"Activity map of {layer}: work per {tile_h}x{tile_w} output tile, {frames}", fontsize=10)
    return _png(figure)
