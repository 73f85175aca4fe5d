"""The command line: report.json contents, and one clear line + exit status 2 for every bad input."""

import json
import subprocess
import sys

import nir
import numpy as np
import pytest

from _cli_errors import user_error
from spikestream import ir
from spikestream.cli import main
from spikestream.frontend import save_nir

REPORT_KEYS = {"command", "version", "input", "model", "encoding", "frames", "wall_s", "fps", "layers", "totals"}


@pytest.fixture()
def spiking_nir(tmp_path):
    rng = np.random.default_rng(0)
    graph = ir.sequential((1, 16, 16), [
        ir.Conv2d("conv", weight=rng.standard_normal((4, 1, 3, 3)), padding=1), ir.LIF("lif", tau=5e-4),
        ir.SumPool2d("pool", kernel_size=2), ir.Flatten("flat"), ir.Linear("fc", weight=rng.standard_normal((3, 256))),
        ir.IF("out_if", threshold=2.0),
    ])
    path = tmp_path / "net.nir"
    save_nir(graph, path)
    return path


def test_run_writes_the_report(tmp_path, capsys, spiking_nir):
    frames = (np.random.default_rng(1).random((6, 16, 16)) * 255).astype(np.uint8)
    np.save(tmp_path / "clip.npy", frames)
    out = tmp_path / "out"
    assert main(["--quiet", "run", str(tmp_path / "clip.npy"), "--model", str(spiking_nir), "--encoding", "rate",
                 "--steps", "4", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["command"] == "run" and report["frames"] == 6 and report["encoding"] == "rate"
    assert [layer["name"] for layer in report["layers"]] == ["conv", "fc"]
    assert report["totals"]["synops"] == sum(layer["synops"] for layer in report["layers"])
    assert report["totals"]["dense_macs"] == 6 * (4 * 9 * 256 + 3 * 256)
    assert "report:" in capsys.readouterr().out
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 3  # self-contained: the trace's plots are embedded
    assert not list(out.glob(".*partial*"))


def test_run_pipelined_gives_the_same_report_as_one_frame_at_a_time(tmp_path, monkeypatch):
    from spikestream.data import moving_objects_clip
    from spikestream.engine._sparse import SparseBackend

    # the crossovers are timed on this machine at every run; both runs must decide dense-or-sparse alike
    monkeypatch.setattr(SparseBackend, "calibrate", lambda self: {})

    np.save(tmp_path / "clip.npy", moving_objects_clip(frames=24, height=64, width=64, objects=3, seed=2).frames)
    reports = {}
    for flags in ([], ["--pipeline"]):
        out = tmp_path / ("pipelined" if flags else "serial")
        assert main(["--quiet", "run", str(tmp_path / "clip.npy"), "--model", "seg-synth", "--backend", "sparse",
                     *flags, "--out", str(out)]) == 0
        reports[bool(flags)] = json.loads((out / "report.json").read_text())
    assert reports[True]["frames"] == reports[False]["frames"] == 24
    assert reports[True]["pipeline"]["after"] and "pipeline" not in reports[False]  # it did run on two stages
    assert reports[True]["totals"] == reports[False]["totals"]
    assert reports[True]["layers"] == reports[False]["layers"]


def test_demo_runs_end_to_end(tmp_path, capsys):
    assert main(["--quiet", "demo", "--out", str(tmp_path), "--frames", "8"]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["command"] == "demo" and report["frames"] == 8 and report["encoding"] == "sigma-delta"
    assert 0 < report["totals"]["activity"] < 1  # after the first frame only changes are sent
    assert (tmp_path / "trace.npz").exists()


def test_bench_writes_rows_side_by_side(tmp_path, capsys):
    argv = ["--quiet", "bench", "--frames", "14", "--rounds", "1", "--no-compile", "--no-external",
            "--out", str(tmp_path)]
    assert main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert REPORT_KEYS | {"rows"} <= set(report) and report["command"] == "bench" and report["frames"] == 14
    rows = {row["name"]: row for row in report["rows"]}
    assert set(rows) == {"pytorch-eager-ann", "spikestream-dense-sd", "spikestream-sparse-sd",
                         "spikestream-sparse-sd-pipelined"}
    sparse, pipelined = rows["spikestream-sparse-sd"], rows["spikestream-sparse-sd-pipelined"]
    assert report["pipeline"]["after"] in pipelined["note"]  # it was profiled, cut and run on two threads
    assert pipelined["max_abs_diff"] == sparse["max_abs_diff"]  # the same outputs, bit for bit
    assert pipelined["synops_over_dense_macs"] == sparse["synops_over_dense_macs"]
    assert report["fps"] == sparse["fps"] > 0 and 0 < sparse["synops_over_dense_macs"] < 1
    assert sparse["efficiency"] == pytest.approx(sparse["speedup_vs_eager"] * sparse["synops_over_dense_macs"])
    assert "spikestream-sparse-sd" in capsys.readouterr().out  # the markdown table


def test_info_lists_devices_and_data(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["devices"][0] == "cpu" and "sigma-delta" in info["encodings"] and "data" in info


def test_missing_video(tmp_path, capsys, spiking_nir):
    user_error(capsys, ["run", str(tmp_path / "nope.avi"), "--model", str(spiking_nir), "--out", str(tmp_path)],
               "nope.avi")


def test_missing_model(tmp_path, capsys):
    np.save(tmp_path / "clip.npy", np.zeros((2, 16, 16), np.uint8))
    user_error(capsys, ["run", str(tmp_path / "clip.npy"), "--model", str(tmp_path / "gone.nir"), "--out",
                         str(tmp_path)], "no such file")


def test_corrupt_nir(tmp_path, capsys, spiking_nir):
    broken = tmp_path / "broken.nir"
    broken.write_bytes(spiking_nir.read_bytes()[:300])
    np.save(tmp_path / "clip.npy", np.zeros((2, 16, 16), np.uint8))
    user_error(capsys, ["run", str(tmp_path / "clip.npy"), "--model", str(broken), "--out", str(tmp_path)],
               "cannot read NIR file")


def test_unsupported_layer(tmp_path, capsys):
    graph = nir.NIRGraph(
        nodes={"input": nir.Input(input_type=np.array([4])), "delay": nir.Delay(delay=np.ones(4)),
               "output": nir.Output(output_type=np.array([4]))},
        edges=[("input", "delay"), ("delay", "output")],
    )
    path = tmp_path / "delay.nir"
    nir.write(path, graph)
    np.save(tmp_path / "clip.npy", np.zeros((2, 4), np.float32))
    line = user_error(capsys, ["run", str(tmp_path / "clip.npy"), "--model", str(path), "--out", str(tmp_path)],
                      "Delay")
    assert "supported" in line


def test_frame_of_the_wrong_shape(tmp_path, capsys, spiking_nir):
    np.save(tmp_path / "clip.npy", np.zeros((3, 20, 20), np.uint8))
    user_error(capsys, ["run", str(tmp_path / "clip.npy"), "--model", str(spiking_nir), "--out", str(tmp_path)],
               "does not fit the model input (1, 16, 16)")


@pytest.mark.parametrize("argv, pattern", [
    (["--encoding", "morse"], "unknown encoding 'morse'"),
    (["--threshold", "-1"], "--threshold must be >= 0"),
    (["--backend", "quantum"], "unknown backend 'quantum'"),
    (["--tile", "0x4"], "tile sides must be positive"),
])
def test_bad_options(tmp_path, capsys, spiking_nir, argv, pattern):
    np.save(tmp_path / "clip.npy", np.zeros((2, 16, 16), np.uint8))
    user_error(capsys, ["run", str(tmp_path / "clip.npy"), "--model", str(spiking_nir), "--out", str(tmp_path),
                         *argv], pattern)


def test_module_entry_point_and_debug_traceback(tmp_path):
    missing = str(tmp_path / "missing.npy")
    quiet = subprocess.run([sys.executable, "-m", "spikestream", "run", missing, "--model", "tiny-seg", "--out",
                            str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 2 and len(quiet.stderr.strip().splitlines()) == 1
    debug = subprocess.run([sys.executable, "-m", "spikestream", "--debug", "run", missing, "--model", "tiny-seg",
                            "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 2 and "Traceback" in debug.stderr
