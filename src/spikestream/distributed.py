"""Sweeps and batch runs on Dask: many ``run``-like jobs in parallel, each finished one kept on disk.

A **sweep** is a TOML file naming a grid; every combination of its axes is one *cell*, a job that streams
one video through one model (``jobs.run_video``) and, when the cell names a hardware target, simulates
the trace on it::

    name = "thresholds"
    [fixed]                      # shared by every cell
    frames = 8
    [grid]                       # every combination is one cell: here 1 x 2 x 2 x 3 x 2 = 24
    model = ["tiny-seg"]
    video = ["synthetic:seed=0", "synthetic:seed=1"]
    encoding = ["sigma-delta", "frame-delta"]
    threshold = [0.02, 0.05, 0.1]
    schedule = ["static", "kwbs"]
    target = ["fpga"]

Parameters are ``model`` and ``video`` plus the fields of ``jobs.RunOptions`` and ``hw.HardwareOptions``
(plural names such as ``thresholds`` and ``schedulers`` are accepted). A cell's key is a hash of its
parameters as the file gives them; its folder ``cells/KEY/`` gets ``report.json`` and, last and atomically,
``cell.json``, the record of the cell (parameters, status, error, metrics, times). A restarted sweep reuses
every record whose status is ``ok`` and runs the rest; a failing cell is recorded with its error and the
others go on. The table ``results.csv`` / ``results.parquet`` and the plots in ``plots/`` are rebuilt
from the records at the end.

A **batch run** (``spikestream run 'videos/*.avi' --model M --out DIR``) is the same machinery over one
axis, the videos: ``DIR/<video name>/`` gets each video's report.json and report.html, and
``DIR/summary.json`` / ``summary.csv`` one row per video.

Cells run on a local Dask cluster (one single-threaded worker process per core) or on an existing Dask
scheduler; the workers then need the same files at the same paths (a shared file system).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import io
import json
import logging
import math
import os
import platform
import re
import tempfile
import time
import tomllib
import traceback
import types
import typing
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from spikestream import __version__
from spikestream._atomic import atomic_write_bytes
from spikestream._progress import progress, set_quiet, status
from spikestream.errors import InputError
from spikestream.hw import HardwareOptions
from spikestream.jobs import RunOptions
from spikestream.report import atomic_write_text

RECORD_NAME = "cell.json"  # a finished cell's record, in its folder; written last
CELLS_DIR = "cells"  # sweep cells: cells/KEY/
SYNTHETIC_DIR = "videos"  # synthetic clips made for the cells, cached by parameters and size
SWEEP_SUMMARY = "sweep.json"
TABLE_NAME = "results"  # results.csv and results.parquet
PLOTS_DIR = "plots"
BATCH_SUMMARY = "summary"  # summary.json and summary.csv of a batch run
SWEEP_KEYS = ("name", "description", "html", "fixed", "grid")  # top-level keys of a sweep file
VIDEO_SUFFIXES = frozenset({".avi", ".mp4", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".npy"})
SYNTHETIC_PREFIX = "synthetic"
SYNTHETIC_DEFAULTS = {"frames": 16, "objects": 3, "seed": 0}  # of `synthetic:k=v,...` clips (frames: or --frames)
NO_TARGET = "none"  # a target value meaning "no hardware simulation" in that cell
# Other names a sweep file may use for a parameter (the plural of every parameter is accepted too).
ALIASES = {"scheduler": "schedule", "keyframe": "keyframe_every", "pes": "processing_elements"}
CELL_KEY_LENGTH = 16  # hex digits of the SHA-256 of a cell's parameters
# Region masking, as `spikestream run --mask KIND --keep F --mask-region R --mask-refresh N` spells it.
MASK_PARAMETERS = {"mask": str, "keep": float, "mask_region": int, "mask_refresh": int}
NO_MASK = "none"


# --- parameters -------------------------------------------------------------------------------------------

def _parameter_types() -> dict[str, object]:
    """Every parameter a cell takes -> its type: ``model``, ``video``, the fields of RunOptions (its ``mask``
    spelt as the ``run`` options ``mask``, ``keep``, ``mask_region``, ``mask_refresh``) and of HardwareOptions."""
    from spikestream.masking import MaskConfig

    types_ = {"model": str, "video": str}
    for options in (RunOptions, HardwareOptions):
        types_.update(typing.get_type_hints(options, localns={"MaskConfig": MaskConfig}))
    types_.update(MASK_PARAMETERS)
    return types_


def _run_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(RunOptions)} - {"mask"}


def _mask_config(params: dict):
    """The MaskConfig of a cell's ``mask``/``keep``/``mask_region``/``mask_refresh``, or None (no mask)."""
    from spikestream.masking import MaskConfig

    if params.get("mask") in (None, NO_MASK):
        return None
    defaults = MaskConfig()
    return MaskConfig(kind=params["mask"], keep=params.get("keep", defaults.keep),
                      region=params.get("mask_region", defaults.region),
                      refresh_every=params.get("mask_refresh", defaults.refresh_every))


def _hardware_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(HardwareOptions)}


def _canonical_name(name: str, known: dict[str, object]) -> str | None:
    if name in known:
        return name
    if name in ALIASES:
        return ALIASES[name]
    if name.endswith("s") and len(name) > 1:
        return _canonical_name(name[:-1], known)  # models, thresholds, schedulers, ...
    return None


def _type_name(hint) -> str:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    names = []
    for kind in allowed:
        if kind is type(None):
            continue
        origin = typing.get_origin(kind)
        names.append("a list of 2 whole numbers" if origin is tuple else
                     {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
                     .get(kind, str(kind)))
    return " or ".join(names)


def _coerce(name: str, value, hint, where: str):
    """``value`` from TOML as the parameter's type (ints to floats, lists to tuples), or an InputError."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for kind in allowed:
        if typing.get_origin(kind) is tuple:
            if isinstance(value, int) and not isinstance(value, bool):
                value = [value, value]  # tile = 16 means 16x16
            if (isinstance(value, list) and len(value) == len(typing.get_args(kind))
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
                return list(value)  # JSON-shaped; RunOptions gets a tuple
        elif kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is float:
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                return float(value)
        elif kind is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif kind is str and isinstance(value, str):
            return value
    raise InputError(f"{where}: {name} must be {_type_name(hint)}, not {value!r}")


def _check_choice(name: str, value, where: str) -> None:
    """Names that must be one of a registry's keys are checked before anything runs."""
    from spikestream.encoding import ENCODINGS
    from spikestream.engine import BACKENDS
    from spikestream.hw import SCHEDULERS, TARGETS
    from spikestream.masking import MASK_KINDS

    choices = {"encoding": ENCODINGS, "backend": BACKENDS, "schedule": SCHEDULERS,
               "target": [*TARGETS, NO_TARGET], "mask": MASK_KINDS}.get(name)
    if choices is not None and isinstance(value, str) and value not in choices:
        raise InputError(f"{where}: unknown {name} {value!r}; choose one of: {', '.join(sorted(choices))}")
    limits = {"threshold": 0.0, "frames": 1, "steps": 1, "keyframe_every": 1, "processing_elements": 1,
              "chips": 1, "profile_every": 1, "mask_region": 1, "mask_refresh": 1}
    if name in limits and value < limits[name]:
        raise InputError(f"{where}: {name} must be >= {limits[name]}, not {value!r}")


def _synthetic_options(spec: str) -> dict[str, int] | None:
    """``synthetic`` or ``synthetic:seed=1,frames=12,objects=4`` -> its options; None for other videos."""
    head, _, rest = spec.partition(":")
    if head != SYNTHETIC_PREFIX:
        return None
    options = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, equals, value = item.partition("=")
        key = key.strip()
        if not equals or key not in SYNTHETIC_DEFAULTS or not re.fullmatch(r"\d+", value.strip()):
            raise InputError(f"synthetic video {spec!r}: expected synthetic:key=N,... with keys "
                             f"{', '.join(SYNTHETIC_DEFAULTS)}, got {item!r}")
        options[key] = int(value)
    if options.get("frames", 1) < 1:
        raise InputError(f"synthetic video {spec!r}: frames must be >= 1")
    return options


def _resolve_model(spec: str, base: Path) -> str:
    """A zoo name as it is, or a model file relative to ``base`` as an absolute path."""
    from spikestream.models import MODELS

    if spec in MODELS:
        return spec
    path = (base / spec).resolve()
    if not path.is_file():
        raise InputError(f"unknown model {spec!r}: not a file (looked at {path}) and not one of the zoo models: "
                         f"{', '.join(sorted(MODELS))}")
    return str(path)


def _resolve_video(spec: str, base: Path) -> str:
    """A synthetic clip spec as it is, a file relative to ``base`` as an absolute path, or a sample video."""
    from spikestream.data import SAMPLE_VIDEOS, find_sample_video

    if _synthetic_options(spec) is not None:
        return spec
    path = (base / spec).resolve()
    if path.is_file():
        return str(path)
    if spec in SAMPLE_VIDEOS:
        return str(find_sample_video(spec))
    raise InputError(f"cannot read video {spec!r}: no such file (looked at {path}); give a path, one of the "
                     f"sample videos {', '.join(SAMPLE_VIDEOS)}, or synthetic:seed=N,frames=N")


# --- cells ------------------------------------------------------------------------------------------------

def cell_key(params: dict) -> str:
    """A stable name for a cell: the SHA-256 of its parameters as canonical JSON."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:CELL_KEY_LENGTH]


@dataclass(frozen=True)
class Cell:
    """One job of a sweep or a batch run."""

    params: dict  # as the sweep file gives them (JSON values); the key is their hash
    folder: str  # output subfolder, relative to the sweep's folder
    model: str  # resolved: a zoo name or an absolute model path
    video: str  # resolved: an absolute path or a synthetic clip spec
    key: str = field(default="")

    def __post_init__(self):
        if not self.key:
            object.__setattr__(self, "key", cell_key(self.params))

    def run_options(self) -> RunOptions:
        fields = _run_fields()
        return RunOptions(**{name: tuple(value) if isinstance(value, list) else value
                             for name, value in self.params.items() if name in fields},
                          mask=_mask_config(self.params))

    def hardware_options(self) -> HardwareOptions | None:
        if self.params.get("target", NO_TARGET) == NO_TARGET:
            return None
        fields = _hardware_fields()
        return HardwareOptions(**{name: value for name, value in self.params.items() if name in fields})


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file, checked: its axes (grid) and the parameters every cell shares."""

    path: Path
    name: str
    axes: dict[str, list]  # parameter -> its values, in file order
    fixed: dict[str, object]  # parameter -> value for every cell
    html: bool = False  # also write each cell's report.html (plots cost about a second per cell)
    description: str = ""

    def cells(self) -> list[Cell]:
        """Every combination of the axes, the last axis varying fastest."""
        import itertools

        base = self.path.parent
        cells = []
        for values in itertools.product(*self.axes.values()):
            params = {**dict(zip(self.axes, values, strict=True)), **self.fixed}
            key = cell_key(params)
            cells.append(Cell(params, f"{CELLS_DIR}/{key}", _resolve_model(params["model"], base),
                              _resolve_video(params["video"], base), key))
        return cells

    @property
    def varying(self) -> list[str]:
        """The axes with more than one value: what tells the cells apart in plots."""
        return [name for name, values in self.axes.items() if len(values) > 1]


def load_sweep(path: str | os.PathLike) -> SweepSpec:
    """Read and check a sweep file; every mistake is an InputError naming the file and the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"cannot read sweep file {str(path)!r}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read sweep file {str(path)!r}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - set(SWEEP_KEYS))
    if unknown:
        raise InputError(f"{path}: unknown key {unknown[0]!r}; a sweep file has {', '.join(SWEEP_KEYS)} "
                         "(parameters go under [grid] or [fixed])")
    grid, fixed = data.get("grid", {}), data.get("fixed", {})
    if not isinstance(grid, dict) or not grid:
        raise InputError(f"{path}: needs a [grid] table with at least one axis, e.g. threshold = [0.02, 0.05]")
    if not isinstance(fixed, dict):
        raise InputError(f"{path}: [fixed] must be a table of parameters")
    known = _parameter_types()
    axes: dict[str, list] = {}
    shared: dict[str, object] = {}
    for section, table in (("grid", grid), ("fixed", fixed)):
        for raw_name, raw in table.items():
            name = _canonical_name(raw_name, known)
            where = f"{path}: [{section}] {raw_name}"
            if name is None:
                raise InputError(f"{path}: unknown axis {raw_name!r} in [{section}]; known parameters: "
                                 f"{', '.join(sorted(known))}")
            if name in axes or name in shared:
                raise InputError(f"{where}: parameter {name!r} is given twice")
            values = raw if section == "grid" and isinstance(raw, list) else [raw]
            if not values:
                raise InputError(f"{where}: an axis needs at least one value")
            checked = [_coerce(name, value, known[name], where) for value in values]
            for value in checked:
                _check_choice(name, value, where)
            if len({json.dumps(value) for value in checked}) != len(checked):
                raise InputError(f"{where}: a value is listed twice")
            if section == "grid":
                axes[name] = checked
            else:
                shared[name] = checked[0]
    for required in ("model", "video"):
        if required not in axes and required not in shared:
            raise InputError(f"{path}: no {required}; add e.g. {required} = [...] under [grid]")
    for name in ("model", "video"):  # fail before any cell runs, not in each of them
        resolve = _resolve_model if name == "model" else _resolve_video
        for value in axes.get(name, [shared.get(name)]):
            resolve(value, path.parent)
    name, html = data.get("name", path.stem), data.get("html", False)
    if not isinstance(name, str) or not isinstance(html, bool):
        raise InputError(f"{path}: name must be a string and html true or false")
    order = ["model", "video"]  # model and video first, the rest in file order
    axes = {key: axes[key] for key in [*[k for k in order if k in axes], *[k for k in axes if k not in order]]}
    return SweepSpec(path.resolve(), name, axes, shared, html, str(data.get("description", "")))


# --- one cell, on a worker --------------------------------------------------------------------------------

def _error_line(error: BaseException) -> str:
    """``VideoError: cannot read video ...``: the type and the first line of the message."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _plain(value):
    """JSON-safe numbers (numpy scalars to Python, NaN/inf to None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def cell_metrics(report: dict) -> dict:
    """The scalar results of a run's report.json, as one flat row."""
    totals = report["totals"]
    frames = report["frames"]
    row = {"frames": frames, "wall_s": report["wall_s"], "fps": report["fps"],
           "events": totals["events"], "synops": totals["synops"], "dense_macs": totals["dense_macs"],
           "activity": totals["activity"], "synops_per_frame": totals["synops"] / frames if frames else None}
    hardware = report.get("hardware") or {}
    for key in ("target", "schedule", "fps", "latency_s", "energy_j_per_frame", "edp", "balance_ratio"):
        if key in hardware:
            row[f"hardware_{key}" if key in ("target", "schedule", "fps") else key] = hardware[key]
    if "masking" in report:
        row["masked_fraction"] = report["masking"].get("masked_fraction")
    if "sensor" in report:
        row["bandwidth_reduction"] = report["sensor"].get("bandwidth_reduction")
        row["energy_reduction"] = report["sensor"].get("energy_reduction")
    accuracy = report.get("accuracy")
    if isinstance(accuracy, int | float):
        row["accuracy"] = accuracy
    return {key: _plain(value) for key, value in row.items()}


def _clip_channels(model: str) -> tuple[int, int, int]:
    """(channels, height, width) of the frames a model reads from a .npy clip: a zoo model with a
    preprocessor reads gray frames at its input size; others read their input as it is."""
    from spikestream.frontend import load_nir
    from spikestream.models import MODELS

    shape = MODELS[model].input_shape if model in MODELS else load_nir(model).input_shape
    if len(shape) != 3:
        raise InputError(f"a synthetic video needs a model with a (C, H, W) input, {model} takes {shape}")
    gray = model in MODELS and MODELS[model].preprocess is not None
    return (1 if gray else shape[0]), shape[1], shape[2]


def synthetic_video(spec: str, model: str, out: Path, frames: int | None) -> Path:
    """The clip of a ``synthetic:...`` spec at the model's input size, as a .npy in ``out/videos`` (made once)."""
    from spikestream.data import moving_objects_clip

    options = {**SYNTHETIC_DEFAULTS, **({"frames": frames} if frames else {}), **_synthetic_options(spec)}
    channels, height, width = _clip_channels(model)
    folder = out / SYNTHETIC_DIR
    path = folder / (f"synthetic-seed{options['seed']}-objects{options['objects']}-frames{options['frames']}-"
                     f"{channels}x{height}x{width}.npy")
    if path.exists():
        return path
    clip = moving_objects_clip(frames=options["frames"], height=height, width=width, objects=options["objects"],
                               seed=options["seed"]).frames  # uint8 (N, H, W)
    if channels > 1:
        clip = np.repeat(clip[:, None], channels, axis=1)  # (N, C, H, W)
    folder.mkdir(parents=True, exist_ok=True)
    # Two workers may make the same clip at once: each writes its own temporary file and renames it.
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".synthetic-", suffix=".npy.partial")
    with os.fdopen(handle, "wb") as file:
        np.save(file, clip, allow_pickle=False)
    os.replace(temporary, path)
    return path


def run_cell(cell: Cell, out: str, html: bool = False) -> dict:
    """Run one cell (on a Dask worker) and return its record; an error is recorded, not raised."""
    import torch

    quiet, threads = set_quiet(True), torch.get_num_threads()  # a worker's bars would only interleave in the log
    torch.set_num_threads(1)  # one worker per core
    try:
        return _run_cell(cell, Path(out), html)
    finally:
        set_quiet(quiet)
        torch.set_num_threads(threads)


def _run_cell(cell: Cell, out_path: Path, html: bool) -> dict:
    from spikestream.jobs import run_video

    started, begin = _now(), time.perf_counter()
    record = {"key": cell.key, "params": cell.params, "folder": cell.folder, "started": started,
              "worker": f"{platform.node()}:{os.getpid()}", "version": __version__}
    try:
        options = cell.run_options()
        video = cell.video
        if _synthetic_options(video) is not None:
            video = str(synthetic_video(video, cell.model, out_path, options.frames))
        report = run_video(video, cell.model, out_path / cell.folder, options, cell.hardware_options(), html=html)
        record.update(status="ok", error=None, result=cell_metrics(report))
    except Exception as error:  # any failure of a cell is its result; the sweep goes on
        record.update(status="error", error=_error_line(error), result={}, traceback=traceback.format_exc())
    record.update(finished=_now(), cell_wall_s=time.perf_counter() - begin)
    return record


# --- the driver -------------------------------------------------------------------------------------------

def read_record(out: Path, cell: Cell) -> dict | None:
    """The stored record of ``cell`` if it finished (status ok, same key), else None."""
    path = out / cell.folder / RECORD_NAME
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # absent, or unreadable: the cell runs again
    if not isinstance(record, dict) or record.get("key") != cell.key or record.get("status") != "ok":
        return None
    return record


def write_record(out: Path, record: dict) -> Path:
    return atomic_write_text(out / record["folder"] / RECORD_NAME, json.dumps(record, indent=2) + "\n")


def _failure_record(cell: Cell, error: BaseException) -> dict:
    """The record of a cell whose worker could not return one (it died, or the task was lost)."""
    return {"key": cell.key, "params": cell.params, "folder": cell.folder, "started": None, "finished": _now(),
            "status": "error", "error": _error_line(error), "result": {}, "version": __version__}


@contextmanager
def dask_client(workers: int, scheduler: str | None = None):
    """A Dask client: of a new local cluster of ``workers`` single-threaded processes, or of ``scheduler``."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout="15s")
        except (OSError, TimeoutError, ValueError) as error:
            raise InputError(f"cannot reach the Dask scheduler at {scheduler!r}: {error}") from None
        try:
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                           silence_logs=logging.CRITICAL)  # workers closing after the scheduler log errors
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _default_workers(pending: int) -> int:
    return max(1, min(os.cpu_count() or 1, pending))



def _execute_resumable(cells: list[Cell], out: Path, html: bool, workers: int | None, scheduler: str | None,
                       description: str, what: str, kept_in: Path) -> tuple[dict, dict]:
    """``execute_cells``; on Ctrl-C or SIGTERM, say how many finished (they are kept) before re-raising."""
    try:
        return execute_cells(cells, out, html=html, workers=workers, scheduler=scheduler, description=description)
    except KeyboardInterrupt:
        done = sum(read_record(out, cell) is not None for cell in cells)
        status(f"{description}: interrupted with {done} of {len(cells)} {what} finished (kept in {kept_in}); "
               f"run the same command again to run the other {len(cells) - done}")
        raise

def execute_cells(cells: Sequence[Cell], out: Path, *, html: bool, workers: int | None, scheduler: str | None,
                  description: str, on_record: Callable[[dict], None] | None = None) -> tuple[dict, dict]:
    """Run the cells that have no finished record, writing each record as soon as it arrives.

    Returns (records by key of every cell that has one now, counts: computed, reused, failed).
    """
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be >= 1, not {workers}")
    records: dict[str, dict] = {}
    pending = []
    for cell in cells:
        record = read_record(out, cell)
        if record is None:
            pending.append(cell)
        else:
            records[cell.key] = record
    counts = {"cells": len(cells), "reused": len(records), "computed": 0, "failed": 0}
    if not pending:
        return records, counts
    workers = workers or _default_workers(len(pending))
    where = f"the Dask scheduler at {scheduler}" if scheduler else f"{workers} local worker processes"
    status(f"{description}: {len(cells)} cells, {len(records)} already finished, {len(pending)} to run on {where}")
    from dask.distributed import as_completed

    with dask_client(workers, scheduler) as client:
        futures = [client.submit(run_cell, cell, str(out.resolve()), html, key=f"cell-{cell.key}", pure=False)
                   for cell in pending]
        cell_of = {future.key: cell for future, cell in zip(futures, pending, strict=True)}
        for future in progress(as_completed(futures), total=len(pending), description=description):
            cell = cell_of[future.key]
            try:
                record = future.result()
            except Exception as error:  # the worker died or the task was lost: recorded like any failure
                record = _failure_record(cell, error)
            write_record(out, record)
            records[cell.key] = record
            counts["computed"] += 1
            counts["failed"] += record["status"] != "ok"
            if on_record is not None:
                on_record(record)
    return records, counts


def rows_of(cells: Sequence[Cell], records: dict[str, dict], columns: Iterable[str]) -> list[dict]:
    """One flat row per cell in grid order: key, status, error, parameters, metrics, times."""
    rows = []
    for cell in cells:
        record = records.get(cell.key)
        row = {"key": cell.key, "status": record["status"] if record else "pending",
               "error": record.get("error") if record else None}
        for name in columns:
            value = cell.params.get(name)
            row[name] = "x".join(map(str, value)) if isinstance(value, list) else value
        if record:
            row.update(record.get("result") or {})
            row.update(started=record.get("started"), finished=record.get("finished"),
                       cell_wall_s=record.get("cell_wall_s"), folder=record.get("folder"))
        rows.append(row)
    return rows


def write_table(rows: list[dict], out: Path, name: str, parquet: bool = True) -> list[Path]:
    """``name``.csv (and ``name``.parquet) from the rows, each written atomically."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    csv_path = atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False))
    written = [csv_path]
    if parquet:
        for column in frame.columns:  # Parquet wants one type per column
            kinds = {type(v) for v in frame[column] if v is not None and not (isinstance(v, float) and math.isnan(v))}
            if len(kinds) > 1:
                frame[column] = [None if v is None else str(v) for v in frame[column]]
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        written.append(atomic_write_bytes(out / f"{name}.parquet", buffer.getvalue()))
    return written


PLOTTED = (  # (column, axis label) of the sweep plots, each drawn when some cell has it
    ("activity", "activity (synops / dense MACs)"),
    ("synops_per_frame", "synaptic operations per frame"),
    ("fps", "frames/s on this machine"),
    ("hardware_fps", "simulated frames/s on the target"),
    ("energy_j_per_frame", "simulated energy per frame (J)"),
    ("masked_fraction", "masked fraction of the input"),
)


def write_plots(rows: list[dict], varying: Sequence[str], out: Path) -> list[Path]:
    """One PNG per metric: a horizontal bar per finished cell, labelled by the axes that vary."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    finished = [row for row in rows if row["status"] == "ok"]
    labels = [" · ".join(str(row[name]) for name in varying) or row["key"] for row in finished]
    written = []
    for column, label in PLOTTED:
        values = [row.get(column) for row in finished]
        if not any(isinstance(v, int | float) for v in values):
            continue
        heights = [v if isinstance(v, int | float) else 0.0 for v in values]
        figure = Figure(figsize=(8.0, 1.2 + 0.22 * len(finished)))
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.barh(range(len(heights)), heights, color="#3b6ea5")
        axes.set_yticks(range(len(labels)), labels, fontsize=7)
        axes.invert_yaxis()  # grid order from the top
        axes.set_xlabel(label)
        failed = len(rows) - len(finished)
        axes.set_title(" · ".join(varying) + (f"   ({failed} cells not finished or failed)" if failed else ""),
                       fontsize=9)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
        written.append(atomic_write_bytes(out / PLOTS_DIR / f"{column}.png", buffer.getvalue()))
    return written


def write_comparison_page(rows: list[dict], varying: Sequence[str], plots: Sequence[Path], out: Path, title: str,
                          subtitle: str) -> Path:
    """``out/index.html``: one self-contained page with a row per cell (the varying parameters, status and
    the metrics measured), links to the cells' own report.html where they wrote one, and the plots."""
    from spikestream.report import COMPARISON_NAME, ReportImage, render_comparison_html

    measured = [column for column, _ in PLOTTED if any(row.get(column) is not None for row in rows)]
    columns = [*varying, "status", *measured, "error"]
    links = []
    for row in rows:
        page = Path(row["folder"]) / "report.html" if row.get("folder") else None
        links.append(str(page) if page is not None and (out / page).exists() else None)
    images = [ReportImage(path.stem.replace("_", " "), f"per cell, from {out / TABLE_NAME}.csv",
                          path.read_bytes()) for path in plots]
    return atomic_write_text(out / COMPARISON_NAME, render_comparison_html(title, subtitle, rows, columns, images,
                                                                           links))


def run_sweep(path: str | os.PathLike, out: str | os.PathLike | None = None, workers: int | None = None,
              scheduler: str | None = None) -> dict:
    """``spikestream sweep``: run every cell of a sweep file not finished yet; rebuild the table and plots.

    Returns the summary written to ``out/sweep.json``: counts (cells, computed, reused, failed), the
    table and plot paths and the wall time. ``out`` defaults to ``out/<sweep file name>``.
    """
    spec = load_sweep(path)
    out = Path(out) if out is not None else Path("out") / Path(path).stem
    out.mkdir(parents=True, exist_ok=True)
    cells = spec.cells()
    begin = time.perf_counter()
    records, counts = _execute_resumable(cells, out, spec.html, workers, scheduler, f"sweep {spec.name}", "cells",
                                         out / CELLS_DIR)
    columns = [*spec.axes, *spec.fixed]
    rows = rows_of(cells, records, columns)
    tables = write_table(rows, out, TABLE_NAME)
    plots = write_plots(rows, spec.varying, out)
    page = write_comparison_page(rows, spec.varying, plots, out, f"spikestream sweep: {spec.name}",
                                 spec.description or str(spec.path))
    summary = {"command": "sweep", "version": __version__, "sweep": str(spec.path), "name": spec.name,
               "run_id": uuid.uuid4().hex, "axes": spec.axes, "fixed": spec.fixed, **counts,
               "ok": sum(row["status"] == "ok" for row in rows),
               "failed_cells": [{"key": row["key"], "error": row["error"]} for row in rows if row["status"] == "error"],
               "wall_s": time.perf_counter() - begin, "table": [str(p) for p in tables],
               "plots": [str(p) for p in plots], "page": str(page)}
    summary["failed"] = len(summary["failed_cells"])
    atomic_write_text(out / SWEEP_SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


# --- batch runs -------------------------------------------------------------------------------------------

def is_batch(videos: Sequence[str]) -> bool:
    """Several videos, a folder, or a glob pattern that is not itself a file."""
    if len(videos) != 1:
        return True
    path = Path(videos[0])
    return path.is_dir() or (glob.has_magic(videos[0]) and not path.exists())


def expand_videos(videos: Sequence[str]) -> list[Path]:
    """Files, folders (their video files, not recursive) and glob patterns -> the video files, sorted."""
    found: list[Path] = []
    for item in videos:
        path = Path(item)
        if path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not matches:
                raise InputError(f"no videos in folder {item!r} (looked for {', '.join(sorted(VIDEO_SUFFIXES))})")
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(item):
            matches = sorted(Path(p) for p in glob.glob(item) if Path(p).is_file())
            if not matches:
                raise InputError(f"no files match {item!r}")
        else:
            raise InputError(f"cannot read video {item!r}: no such file or folder")
        found.extend(p for p in matches if p.resolve() not in {q.resolve() for q in found})
    return found


def _batch_folders(videos: Sequence[Path]) -> list[str]:
    """A folder name per video: its stem, or its file name where stems clash, numbered if those clash too."""
    stems = [video.stem for video in videos]
    names = [video.stem if stems.count(video.stem) == 1 else video.name for video in videos]
    seen: dict[str, int] = {}
    folders = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        folders.append(name if names.count(name) == 1 else f"{name}-{seen[name]}")
    return folders


def _options_params(options: RunOptions) -> dict:
    """RunOptions as cell parameters (JSON values; the mask spelt as ``mask``, ``keep``, ``mask_region``, ...)."""
    params = {field_.name: getattr(options, field_.name) for field_ in dataclasses.fields(options)}
    params = {name: list(value) if isinstance(value, tuple) else value for name, value in params.items()}
    mask = params.pop("mask", None)
    if mask is not None:
        params.update(mask=mask.kind, keep=mask.keep, mask_region=mask.region, mask_refresh=mask.refresh_every)
    return params


def run_batch(videos: Sequence[str], model: str, out: str | os.PathLike, options: RunOptions | None = None,
              hardware: HardwareOptions | None = None, workers: int | None = None,
              scheduler: str | None = None) -> dict:
    """``spikestream run`` over many videos in parallel: ``out/<video>/report.json`` and ``report.html`` each,
    and ``out/summary.json`` / ``summary.csv`` with one row per video. Videos already done with the same
    model and options (a finished ``cell.json``) are not run again."""
    options = options or RunOptions()
    paths = expand_videos(videos)
    resolved_model = _resolve_model(model, Path.cwd())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shared = {"model": model, **_options_params(options)}
    if hardware is not None:
        shared.update(dataclasses.asdict(hardware))
    cells = [Cell({**shared, "video": str(path.resolve())}, folder, resolved_model, str(path.resolve()))
             for path, folder in zip(paths, _batch_folders(paths), strict=True)]
    begin = time.perf_counter()
    records, counts = _execute_resumable(cells, out, True, workers, scheduler, f"run {len(cells)} videos", "videos",
                                         out)
    rows = rows_of(cells, records, ["video"])
    for row, cell in zip(rows, cells, strict=True):
        row["report"] = str(out / cell.folder / "report.json") if row["status"] == "ok" else None
    tables = write_table(rows, out, BATCH_SUMMARY, parquet=False)
    page = write_comparison_page(rows, ["video"], [], out, f"spikestream run: {len(cells)} videos through {model}",
                                 str(out))
    summary = {"command": "run", "version": __version__, "model": model, "options": shared, **counts,
               "videos": len(cells), "ok": sum(row["status"] == "ok" for row in rows),
               "failed": sum(row["status"] == "error" for row in rows),
               "wall_s": time.perf_counter() - begin, "table": str(tables[0]), "page": str(page), "rows": rows}
    summary.pop("cells")
    atomic_write_text(out / f"{BATCH_SUMMARY}.json", json.dumps(summary, indent=2) + "\n")
    return summary
