"""report.json: the machine-readable result of every job (keys per DESIGN.md §4; add, never rename)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from spikestream._atomic import atomic_write_text

REPORT_NAME = "report.json"


def _plain(value):
    """numpy scalars and arrays → JSON-native values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_report(out_dir: str | os.PathLike, report: dict) -> Path:
    return atomic_write_text(Path(out_dir) / REPORT_NAME, json.dumps(_plain(report), indent=2) + "\n")


def read_report(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text())
