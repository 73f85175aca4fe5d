"""Reports: report.json now; the HTML report and plots build on it."""

from spikestream.report._json import REPORT_NAME, atomic_write_text, read_report, write_report

__all__ = ["REPORT_NAME", "atomic_write_text", "read_report", "write_report"]
