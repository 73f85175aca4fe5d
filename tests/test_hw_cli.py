"""`spikestream simulate` and `run --target`: report.json hardware keys, plots, and one-line user errors."""

import json

import numpy as np
import pytest

from _cli_errors import user_error
from spikestream import ir
from spikestream.cli import main
from spikestream.engine import Stream, Trace
from spikestream.frontend import save_nir
from spikestream.hw import attach_geometry

HARDWARE_KEYS = {"target", "schedule", "fps", "latency_s", "energy_j_per_frame", "edp", "balance_ratio"}


def in_sensor_graph() -> ir.Graph:
    """First layer kernel = stride = 2 with IF spikes (fits the pixel array), then a conv and a readout."""
    rng = np.random.default_rng(0)
    return ir.sequential((1, 16, 16), [
        ir.Conv2d("pix", weight=rng.standard_normal((4, 1, 2, 2)), stride=2), ir.IF("pix_if", threshold=0.5),
        ir.Conv2d("conv", weight=rng.standard_normal((4, 4, 3, 3)), padding=1), ir.IF("conv_if", threshold=1.0),
        ir.Flatten("flat"), ir.Linear("fc", weight=rng.standard_normal((3, 256))),
    ])


@pytest.fixture(scope="module")
def saved_trace(tmp_path_factory):
    graph = in_sensor_graph()
    stream = Stream(graph, "direct", tile=(4, 4))
    frames = np.random.default_rng(1).random((6, 16, 16)).astype(np.float32)
    for frame in frames:
        stream.process(frame)
    attach_geometry(stream.trace, graph)
    return stream.trace.save(tmp_path_factory.mktemp("trace") / "trace.npz")


def test_simulate_fpga_writes_hardware_keys_and_plots(tmp_path, capsys, saved_trace):
    out, schedule = tmp_path / "out", "adaptive-kwbs"
    assert main(["--quiet", "simulate", "--trace", str(saved_trace), "--target", "fpga", "--schedule", schedule,
                 "--pes", "4", "--balance-threshold", "0.8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["command"] == "simulate" and report["frames"] == 6
    assert set(report["hardware"]) >= HARDWARE_KEYS and report["hardware"]["schedule"] == schedule
    assert report["fps"] == report["hardware"]["fps"] > 0
    assert 0 < report["hardware"]["balance_ratio"] <= 1
    for precision in ("fp32", "int8"):
        energy = report["energy"][precision]
        assert energy["compute_only"]["snn_j_per_frame"] > 0 and energy["memory_inclusive"]["ann_j_per_frame"] > 0
        assert "break_even_activity" in energy["memory_inclusive"]
    assert (out / "pe_loads.png").stat().st_size > 0 and (out / "energy_breakdown.png").stat().st_size > 0
    assert "PE loads over frames" in (out / "report.html").read_text()
    assert "frames/s" in capsys.readouterr().out
    assert not list(out.glob(".*partial*"))


def test_simulate_neuromorphic_and_sensor(tmp_path, saved_trace):
    assert main(["--quiet", "simulate", "--trace", str(saved_trace), "--target", "neuromorphic", "--chip", "loihi",
                 "--out", str(tmp_path / "n")]) == 0
    report = json.loads((tmp_path / "n" / "report.json").read_text())
    assert report["hardware"]["target"] == "neuromorphic" and report["hardware"]["edp"] > 0
    assert main(["--quiet", "simulate", "--trace", str(saved_trace), "--target", "sensor",
                 "--out", str(tmp_path / "s")]) == 0
    report = json.loads((tmp_path / "s" / "report.json").read_text())
    assert report["sensor"]["bandwidth_reduction"] > 1 and report["sensor"]["energy_reduction"] > 0
    assert not (tmp_path / "s" / "pe_loads.png").exists()  # no PE array


def test_run_with_a_target(tmp_path, capsys):
    save_nir(in_sensor_graph(), tmp_path / "net.nir")
    np.save(tmp_path / "clip.npy", (np.random.default_rng(2).random((4, 16, 16)) * 255).astype(np.uint8))
    out = tmp_path / "run"
    assert main(["--quiet", "run", str(tmp_path / "clip.npy"), "--model", str(tmp_path / "net.nir"),
                 "--encoding", "direct", "--target", "fpga", "--schedule", "round-robin", "--pes", "2",
                 "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["hardware"]) >= HARDWARE_KEYS and report["hardware"]["schedule"] == "round-robin"
    assert (out / "pe_loads.png").exists()
    assert Trace.load(out / "trace.npz").metadata["geometry"]  # saved with the trace for `simulate`


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, saved_trace):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    user_error(capsys, ["simulate", "--trace", str(bad), "--out", str(tmp_path / "o")], "cannot read trace")
    user_error(capsys, ["simulate", "--trace", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o")],
               "no such file")
    user_error(capsys, ["simulate", "--trace", str(saved_trace), "--schedule", "fifo", "--out", str(tmp_path / "o")],
               "unknown schedule 'fifo'")
    user_error(capsys, ["simulate", "--trace", str(saved_trace), "--target", "gpu", "--out", str(tmp_path / "o")],
               "unknown target 'gpu'")
    user_error(capsys, ["simulate", "--trace", str(saved_trace), "--device", "XC7Z020", "--pes", "5000",
                         "--out", str(tmp_path / "o")], "do not fit the XC7Z020")


def test_no_steal_reaches_the_scheduler(tmp_path, saved_trace, monkeypatch):
    """--no-steal turns adaptive KWBS's run-time stealing off, and only that; without it the default rule runs."""
    import spikestream.hw._options as options_module

    passed = []
    real_simulate = options_module.simulate

    def recording_simulate(trace, target, schedule, schedule_options, **target_options):
        passed.append(dict(schedule_options))
        return real_simulate(trace, target, schedule, schedule_options, **target_options)

    monkeypatch.setattr(options_module, "simulate", recording_simulate)
    for flags in ([], ["--no-steal"], ["--no-steal", "--balance-threshold", "0.8"]):
        assert main(["--quiet", "simulate", "--trace", str(saved_trace), "--target", "fpga", "--schedule",
                     "adaptive-kwbs", "--pes", "4", *flags, "--out", str(tmp_path / str(len(passed)))]) == 0
    assert passed == [{}, {"steal": False}, {"steal": False, "threshold": 0.8}]
