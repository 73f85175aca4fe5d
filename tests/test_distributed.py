"""Sweeps and batch runs on Dask: restartable grids, recorded failures, one table; clear errors for bad files."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _cli_errors import user_error
from spikestream.cli import main
from spikestream.data import moving_objects_clip
from spikestream.distributed import (
    RECORD_NAME,
    Cell,
    cell_key,
    expand_videos,
    is_batch,
    load_sweep,
    run_cell,
)
from spikestream.errors import InputError

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sweep.toml"

# 2 videos x 3 thresholds x 2 masks x 2 schedules = 24 tiny cells (tiny-seg, 64x64, 2 frames).
SWEEP_24 = """
name = "restart"
[fixed]
model = "tiny-seg"
frames = 2
keep = 0.5
target = "fpga"
[grid]
videos = ["synthetic:seed=3", "clip.npy"]
thresholds = [0.02, 0.1, 0.3]
masks = ["none", "static"]
schedulers = ["static", "kwbs"]
"""


@pytest.fixture(scope="module")
def scheduler():
    """One 2-worker Dask cluster for the tests that reach it by its address (``--scheduler``)."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0") as cluster:
        yield cluster.scheduler_address


def _clip(path, seed=0, frames=3):
    np.save(path, moving_objects_clip(frames=frames, height=64, width=64, seed=seed).frames)
    return path


def _records(out):
    return {path.parent.name: path.read_text() for path in (out / "cells").glob(f"*/{RECORD_NAME}")}


def _time(stamp):
    return datetime.fromisoformat(stamp)


def test_killed_sweep_restarts_only_the_unfinished_cells(tmp_path):
    """Acceptance: a 2-worker local sweep of 24 cells, killed midway (SIGKILL to the driver and its workers),
    then run again: the finished cells' records are untouched and only the others run."""
    _clip(tmp_path / "clip.npy", seed=1)
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(SWEEP_24)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "spikestream", "--quiet", "sweep", str(sweep), "--workers", "2", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while len(_records(out)) < 4:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no cell finished in time"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver, its scheduler and its worker processes
        process.communicate()
    killed_at = datetime.now(UTC)
    before = _records(out)
    assert 4 <= len(before) < 24, len(before)
    assert not (out / "results.csv").exists()  # the table is written at the end

    assert main(["--quiet", "sweep", str(sweep), "--workers", "2", "--out", str(out)]) == 0

    after = _records(out)
    assert set(after) >= set(before) and len(after) == 24
    assert all(after[key] == before[key] for key in before)  # byte for byte: not recomputed
    rerun = [json.loads(after[key]) for key in set(after) - set(before)]
    assert all(_time(record["started"]) >= killed_at for record in rerun)
    assert all(_time(json.loads(before[key])["finished"]) < killed_at for key in before)
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["cells"], summary["reused"], summary["computed"]) == (24, len(before), 24 - len(before))
    assert summary["ok"] == 24 and summary["failed"] == 0

    table = pd.read_csv(out / "results.csv")
    assert len(table) == 24 and set(table["status"]) == {"ok"}
    assert sorted(table["key"]) == sorted(after)
    assert set(table["mask"]) == {"none", "static"} and set(table["threshold"]) == {0.02, 0.1, 0.3}
    masked = table[table["mask"] == "static"]
    assert (masked["masked_fraction"] > 0).all() and table[table["mask"] == "none"]["masked_fraction"].isna().all()
    # a higher sigma-delta threshold sends fewer events, cell by cell
    for _, group in table.groupby(["video", "mask", "schedule"]):
        assert list(group.sort_values("threshold")["events"]) == sorted(group["events"], reverse=True)
    assert pd.read_parquet(out / "results.parquet")["key"].tolist() == table["key"].tolist()
    assert {Path(p).name for p in summary["plots"]} >= {"activity.png", "synops_per_frame.png", "fps.png"}
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in summary["plots"])
    page = (out / "index.html").read_text()  # the comparison page: a row per cell, the plots inline
    assert page.count("<tr>") == 1 + 24 and page.count("data:image/png;base64,") == len(summary["plots"])


def test_failing_cell_is_recorded_and_rerun_on_restart(tmp_path, capsys, scheduler):
    _clip(tmp_path / "good.npy")
    (tmp_path / "broken.npy").write_bytes(_clip(tmp_path / "whole.npy").read_bytes()[:100])  # truncated
    sweep = tmp_path / "sweep.toml"
    sweep.write_text('[grid]\nmodel = ["tiny-seg"]\nvideo = ["good.npy", "broken.npy"]\n'
                     'threshold = [0.05, 0.2]\n[fixed]\nframes = 2\n')
    out = tmp_path / "out"
    assert main(["--quiet", "sweep", str(sweep), "--scheduler", scheduler, "--out", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "2 ok, 2 failed" in printed and "broken.npy" in printed
    table = pd.read_csv(out / "results.csv")
    assert list(table["status"]) == ["ok", "ok", "error", "error"]
    assert table["error"].iloc[2].startswith("VideoError: ") and "broken.npy" in table["error"].iloc[2]
    assert table["frames"].iloc[:2].tolist() == [2, 2]
    record = json.loads((out / table["folder"].iloc[2] / RECORD_NAME).read_text())
    assert record["status"] == "error" and "Traceback" in record["traceback"]

    (tmp_path / "broken.npy").write_bytes((tmp_path / "whole.npy").read_bytes())  # the user fixes the file
    assert main(["--quiet", "sweep", str(sweep), "--scheduler", scheduler, "--out", str(out)]) == 0
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["reused"], summary["computed"], summary["failed"]) == (2, 2, 0)
    assert set(pd.read_csv(out / "results.csv")["status"]) == {"ok"}


def test_batch_run_over_a_folder(tmp_path, capsys, scheduler):
    videos = tmp_path / "videos"
    videos.mkdir()
    for seed in range(3):
        _clip(videos / f"clip{seed}.npy", seed=seed)
    (videos / "notes.txt").write_text("not a video")
    (videos / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "batch"
    status = main(["--quiet", "run", str(videos), "--model", "tiny-seg", "--frames", "2", "--target", "fpga",
                   "--out", str(out), "--scheduler", scheduler])
    assert status == 1  # one of the four videos could not be read; the others have their reports
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["videos"], summary["ok"], summary["failed"]) == (4, 3, 1)
    rows = {Path(row["video"]).name: row for row in summary["rows"]}
    assert set(rows) == {"bad.npy", "clip0.npy", "clip1.npy", "clip2.npy"}
    assert rows["bad.npy"]["status"] == "error" and "VideoError" in rows["bad.npy"]["error"]
    for seed in range(3):
        report = json.loads((out / f"clip{seed}" / "report.json").read_text())
        assert report["frames"] == 2 and report["hardware"]["target"] == "fpga"
        assert rows[f"clip{seed}.npy"]["synops"] == report["totals"]["synops"]
        assert (out / f"clip{seed}" / "report.html").read_text().count("data:image/png;base64,") >= 3
    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 4 and sorted(table["status"]) == ["error", "ok", "ok", "ok"]
    assert "clip1" in capsys.readouterr().out
    page = (out / "index.html").read_text()  # links each video's own report; the failed one has none
    assert sorted(page.count(f'href="clip{seed}/report.html"') for seed in range(3)) == [1, 1, 1]
    assert page.count("VideoError") == 1

    (videos / "bad.npy").unlink()  # a rerun of the same command reuses the finished videos
    assert main(["--quiet", "run", str(videos / "*.npy"), "--model", "tiny-seg", "--frames", "2", "--target",
                 "fpga", "--out", str(out), "--scheduler", scheduler]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["videos"], summary["reused"], summary["computed"]) == (3, 3, 0)


def test_a_cell_runs_in_process_and_records_its_metrics(tmp_path):
    _clip(tmp_path / "clip.npy")
    params = {"model": "tiny-seg", "video": "clip.npy", "frames": 2, "threshold": 0.1, "target": "fpga",
              "schedule": "kwbs", "tile": [8, 8]}
    cell = Cell(params, "cells/one", "tiny-seg", str(tmp_path / "clip.npy"))
    assert cell.run_options().tile == (8, 8) and cell.hardware_options().schedule == "kwbs"
    record = run_cell(cell, str(tmp_path))
    report = json.loads((tmp_path / "cells/one/report.json").read_text())
    assert record["status"] == "ok" and record["key"] == cell_key(params)
    assert record["result"]["synops"] == report["totals"]["synops"]
    assert record["result"]["energy_j_per_frame"] == report["hardware"]["energy_j_per_frame"]
    assert not (tmp_path / "cells/one/report.html").exists()  # sweep cells write report.json only by default
    broken = run_cell(Cell({**params, "model": "gone.nir"}, "cells/two", str(tmp_path / "gone.nir"), "x.npy"),
                      str(tmp_path))
    assert broken["status"] == "error" and broken["result"] == {}


def test_sweep_file_axes_keys_and_aliases(tmp_path):
    _clip(tmp_path / "clip.npy")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[grid]\nmodels = ["tiny-seg"]\nvideo = ["clip.npy", "synthetic:seed=2,frames=4"]\n'
                     'encodings = ["sigma-delta", "frame-delta"]\nthreshold = [0, 0.1]\ntile = [[8, 8], 16]\n'
                     '[fixed]\nscheduler = "static"\nsteps = 2\n')
    spec = load_sweep(sweep)
    assert list(spec.axes) == ["model", "video", "encoding", "threshold", "tile"]
    assert spec.axes["threshold"] == [0.0, 0.1] and spec.axes["tile"] == [[8, 8], [16, 16]]
    assert spec.fixed == {"schedule": "static", "steps": 2}
    cells = spec.cells()
    assert len(cells) == 16 and len({cell.key for cell in cells}) == 16
    assert cells[0].video == str(tmp_path / "clip.npy") and cells[-1].video == "synthetic:seed=2,frames=4"
    assert cells[0].hardware_options() is None  # no target: no hardware simulation
    # the key is the parameters' hash, not their order in the file
    assert cells[0].key == cell_key(dict(reversed(list(cells[0].params.items()))))
    assert spec.varying == ["video", "encoding", "threshold", "tile"]


def test_example_sweep_files_are_valid(tmp_path):
    """examples/sweep.toml and the sweep file shown in docs/sweeps.md: 24 cells each, the same grid."""
    example = load_sweep(EXAMPLE)
    assert len(example.cells()) >= 24 and example.fixed["target"] == "fpga"
    shown = (EXAMPLE.parents[1] / "docs" / "sweeps.md").read_text().split("```toml\n")[1].split("```")[0]
    (tmp_path / "docs.toml").write_text(shown)
    documented = load_sweep(tmp_path / "docs.toml")
    assert len(documented.cells()) == 24 and documented.axes == example.axes


@pytest.mark.parametrize(("text", "pattern"), [
    ("[grid\nmodel = 1", "not valid TOML"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\ncolour = ["red"]', "unknown axis 'colour'"),
    ('[grid]\nmodel = ["no-such-net"]\nvideo = ["synthetic"]', "unknown model 'no-such-net'"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["missing.avi"]', "cannot read video 'missing.avi'"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\nencoding = ["morse"]', "unknown encoding 'morse'"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\nthreshold = ["low"]', "threshold must be a number"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\nthreshold = [-1]', "threshold must be >= 0"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\nschedule = ["lpt", "lpt"]', "unknown schedule"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\nthreshold = [0.1, 0.1]', "listed twice"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic:speed=3"]', "synthetic:key=N"),
    ('[grid]\nmodel = ["tiny-seg"]\nmask = ["union"]', "no video"),
    ('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\n[fixed]\nthresholds = 0.1\nthreshold = 0.2',
     "given twice"),
    ('grid = 3', "needs a [grid] table"),
    ('workers = 3\n[grid]\nmodel = ["tiny-seg"]', "unknown key 'workers'"),
])
def test_bad_sweep_files_are_one_clear_line(tmp_path, capsys, text, pattern):
    sweep = tmp_path / "bad.toml"
    sweep.write_text(text)
    user_error(capsys, ["sweep", str(sweep), "--out", str(tmp_path / "out")], pattern)
    with pytest.raises(InputError):
        load_sweep(sweep)
    assert not (tmp_path / "out" / "cells").exists()


def test_sweep_and_batch_user_errors(tmp_path, capsys):
    user_error(capsys, ["sweep", str(tmp_path / "none.toml")], "no such file")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[grid]\nmodel = ["tiny-seg"]\nvideo = ["synthetic"]\n')
    user_error(capsys, ["sweep", str(sweep), "--workers", "0", "--out", str(tmp_path / "o")], "--workers")
    user_error(capsys, ["sweep", str(sweep), "--scheduler", "nonsense://x", "--out", str(tmp_path / "o")],
               "cannot reach the Dask scheduler at 'nonsense://x'")
    user_error(capsys, ["run", str(tmp_path / "*.avi"), "--model", "tiny-seg", "--out", str(tmp_path / "o")],
               "no files match")
    (tmp_path / "empty").mkdir()
    user_error(capsys, ["run", str(tmp_path / "empty"), "--model", "tiny-seg", "--out", str(tmp_path / "o")],
               "no videos in folder")


def test_batch_detection_and_expansion(tmp_path):
    for name in ("b.npy", "a.avi", "c.txt"):
        (tmp_path / name).write_bytes(b"")
    assert not is_batch([str(tmp_path / "a.avi")])
    assert is_batch([str(tmp_path)]) and is_batch([str(tmp_path / "*.npy")]) and is_batch(["x.avi", "y.avi"])
    assert [p.name for p in expand_videos([str(tmp_path)])] == ["a.avi", "b.npy"]
    assert [p.name for p in expand_videos([str(tmp_path / "*.npy"), str(tmp_path / "b.npy")])] == ["b.npy"]
