"""Plots of hardware results: PE loads over frames and energy breakdowns (PNG bytes, Agg canvas).

``hardware_plots`` renders them once; ``hardware_images`` captions them for ``report.html`` and
``write_hardware_pngs`` leaves them as PNG files in the output folder (written atomically).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from spikestream._atomic import atomic_write_bytes

PE_LOADS_PNG = "pe_loads.png"
ENERGY_PNG = "energy_breakdown.png"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def pe_loads_plot(result) -> bytes | None:
    """Busy cycles of every PE in every frame (summed over layers) and the balance ratio per frame;
    None for targets without a PE array."""
    if not result.pe_loads:
        return None
    layers = [np.asarray(x, dtype=np.float64) for x in result.pe_loads.values()]
    loads = sum(layers)  # (frames, P)
    peaks = np.stack([x.max(1) for x in layers]).sum(0)  # Σ over layers of the slowest PE
    means = np.stack([x.mean(1) for x in layers]).sum(0)
    balance = np.divide(means, peaks, out=np.ones_like(means), where=peaks > 0)
    figure = _figure(8, 5.2)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    image = top.imshow(loads.T, aspect="auto", origin="lower", cmap="viridis", interpolation="nearest")
    figure.colorbar(image, ax=top, label="busy cycles (all layers)")
    top.set_ylabel("processing element")
    top.set_title(f"PE loads per frame: {result.target}, schedule {result.schedule}, "
                  f"balance {result.balance_ratio:.3f}")
    bottom.plot(balance, color="tab:red", lw=1.2)
    bottom.set_ylim(0, 1.05)
    bottom.set_ylabel("mean / max")
    bottom.set_xlabel("frame")
    return _png(figure)


def energy_breakdown_plot(result, energy: dict) -> bytes:
    """Left: the target's energy per frame by component. Right: SNN vs equivalent ANN energy per frame,
    compute-only and memory-inclusive, at each number format of ``energy`` (``hw.energy_report``)."""
    figure = _figure(10, 4.2)
    left, right = figure.subplots(1, 2, width_ratios=(1, 2))
    bottom = 0.0
    for name, value in result.energy_breakdown.items():
        left.bar([result.target], [value * 1e6], bottom=[bottom * 1e6], label=name)
        bottom += value
    left.set_ylabel("µJ per frame")
    left.set_title(f"{result.target}: {result.energy_j_per_frame * 1e6:.3g} µJ/frame")
    left.legend(fontsize=7)
    labels, snn, ann = [], [], []
    for precision, entry in energy.items():
        if not isinstance(entry, dict) or "compute_only" not in entry:
            continue
        for model in ("compute_only", "memory_inclusive"):
            labels.append(f"{precision}\n{model.replace('_', '-')}")
            snn.append(entry[model]["snn_j_per_frame"] * 1e6)
            ann.append(entry[model]["ann_j_per_frame"] * 1e6)
    x = np.arange(len(labels))
    right.bar(x - 0.2, snn, 0.4, label="SNN (trace)")
    right.bar(x + 0.2, ann, 0.4, label="equivalent ANN")
    right.set_xticks(x, labels, fontsize=8)
    right.set_yscale("log")
    right.set_ylabel("µJ per frame")
    right.set_title("SNN vs ANN: compute-only and memory-inclusive")
    right.legend(fontsize=8)
    return _png(figure)


def hardware_plots(result, energy: dict) -> dict[str, bytes]:
    """PNG bytes by file name, each rendered once: ``pe_loads.png`` (PE-array targets only) and
    ``energy_breakdown.png``."""
    plots = {}
    loads = pe_loads_plot(result)
    if loads is not None:
        plots[PE_LOADS_PNG] = loads
    plots[ENERGY_PNG] = energy_breakdown_plot(result, energy)
    return plots


def hardware_images(result, plots: dict[str, bytes]) -> list:
    """The plots of ``hardware_plots``, captioned for ``report.html``."""
    from spikestream.report._html import ReportImage

    captions = {
        PE_LOADS_PNG: ("PE loads over frames",
                       f"Busy cycles of each processing element per frame, summed over layers, under the "
                       f"{result.schedule} schedule; below, mean ÷ max PE load per frame (1 = perfectly balanced)."),
        ENERGY_PNG: ("Energy per frame",
                     f"Left: the {result.target} target's estimate by component. Right: the trace's SNN against the "
                     "equivalent ANN with the Horowitz 45 nm table, compute-only and including SRAM/DRAM traffic."),
    }
    return [ReportImage(*captions[name], data) for name, data in plots.items()]


def write_hardware_pngs(out_dir: str | os.PathLike, plots: dict[str, bytes]) -> list[Path]:
    """Write the plots of ``hardware_plots`` as PNG files in ``out_dir``, atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, data in plots.items():
        written.append(atomic_write_bytes(out / name, data))
    return written
