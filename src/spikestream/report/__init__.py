"""Reports: report.json, the self-contained report.html, and plots of a Trace.

The HTML and plot names are resolved lazily (PEP 562), so that writing report.json needs no matplotlib.
"""

from importlib import import_module

from spikestream.report._json import REPORT_NAME, atomic_write_text, read_report, write_report

_LAZY = {
    "COMPARISON_NAME": "spikestream.report._html",
    "HTML_NAME": "spikestream.report._html",
    "ReportImage": "spikestream.report._html",
    "png_from_array": "spikestream.report._html",
    "render_comparison_html": "spikestream.report._html",
    "render_html": "spikestream.report._html",
    "trace_images": "spikestream.report._html",
    "write_html_report": "spikestream.report._html",
    "annotate_frame": "spikestream.report._annotate",
    "activity_map": "spikestream.report._plots",
    "activity_map_plot": "spikestream.report._plots",
    "activity_per_frame_plot": "spikestream.report._plots",
    "events_per_layer_plot": "spikestream.report._plots",
    "synops_vs_dense_plot": "spikestream.report._plots",
    "hardware_images": "spikestream.report._hardware_plots",
    "hardware_plots": "spikestream.report._hardware_plots",
    "write_hardware_pngs": "spikestream.report._hardware_plots",
}

__all__ = ["REPORT_NAME", "atomic_write_text", "read_report", "write_report", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spikestream.report' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
