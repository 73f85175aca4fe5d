"""Malformed inputs: every reader either accepts a damaged file or raises a one-line InputError; nothing
crashes or hangs (tests/_fuzzing.py). A bounded budget per kind here; benchmarks/reliability.py runs more."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _fuzzing import DAMAGES, INPUT_KINDS, Damage, trial
from spikestream.cli import main
from spikestream.data import find_sample_video
from spikestream.errors import InputError

EXAMPLES_PER_KIND = 25

damages = st.builds(Damage, kind=st.sampled_from(DAMAGES), offset=st.floats(0, 1), size=st.integers(1, 64),
                    seed=st.integers(0, 2**31 - 1))


def _have_sample_video() -> bool:
    try:
        find_sample_video("tree.avi")
    except InputError:
        return False
    return True


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    names = [n for n in INPUT_KINDS if n != "video-sample" or _have_sample_video()]
    return {name: INPUT_KINDS[name].make_seed(folder) for name in names}


@pytest.mark.parametrize("name", list(INPUT_KINDS))
def test_undamaged_seed_is_accepted(name, seeds, tmp_path):
    if name not in seeds:
        pytest.skip("the opencv-doc sample videos cannot be fetched here")
    assert trial(INPUT_KINDS[name], seeds[name], Damage("overwrite", 1.0, 0, 0), tmp_path).result == "accepted"


@pytest.mark.parametrize("name", list(INPUT_KINDS))
def test_damaged_inputs_are_accepted_or_a_clear_error(name, seeds, tmp_path_factory):
    if name not in seeds:
        pytest.skip("the opencv-doc sample videos cannot be fetched here")
    folder = tmp_path_factory.mktemp(f"fuzz-{name}")
    results = []

    @settings(max_examples=EXAMPLES_PER_KIND, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(damage=damages)
    def check(damage):
        outcome = trial(INPUT_KINDS[name], seeds[name], damage, folder)
        results.append(outcome.result)
        assert outcome.result != "finding", f"{damage}: {outcome.detail}"

    check()
    # the damage must really reach the reader: cutting a file to nothing is always refused
    assert trial(INPUT_KINDS[name], seeds[name], Damage("truncate", 0.0, 0, 0), folder).result == "clear error"
    assert len(results) == EXAMPLES_PER_KIND


def test_truncated_copies_of_the_real_sample_video_are_refused_or_read(tmp_path):
    if not _have_sample_video():
        pytest.skip("the opencv-doc sample videos cannot be fetched here")
    kind = INPUT_KINDS["video-sample"]
    seed = kind.make_seed(tmp_path)
    outcomes = {trial(kind, seed, Damage("truncate", cut, 0, 0), tmp_path).result for cut in (0.0, 0.001, 0.01, 0.3)}
    assert outcomes <= {"accepted", "clear error"} and "clear error" in outcomes


def test_failed_run_keeps_the_earlier_report(tmp_path, capsys):
    """A run on a corrupt video fails with one line and exit 2 and leaves the previous run's files as they were."""
    clip = tmp_path / "clip.npy"
    np.save(clip, (np.random.default_rng(0).random((4, 64, 64)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    assert main(["--quiet", "run", str(clip), "--model", "tiny-seg", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    capsys.readouterr()
    assert main(["--quiet", "run", str(corrupt), "--model", "tiny-seg", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "corrupt.mp4" in error[0]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert json.loads((out / "report.json").read_text())["input"] == str(clip)



@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_partial_files(tmp_path, stop):
    """Ctrl-C or SIGTERM in the middle of ``spikestream run``: exit 130, a message saying how far it got, and
    an output folder holding the earlier complete report and no temporary file."""
    clip = tmp_path / "long.npy"
    np.save(clip, (np.random.default_rng(0).random((3000, 64, 64)) * 255).astype(np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"earlier": true}\n')
    process = subprocess.Popen([sys.executable, "-m", "spikestream", "run", str(clip), "--model", "tiny-seg",
                                "--out", str(out)], stderr=subprocess.PIPE, text=True, bufsize=1)
    seen = ""
    while "run long.npy" not in seen:  # the progress bar is up: frames are streaming
        line = process.stderr.read(1)
        assert line, f"the run ended before it could be interrupted: {seen}"
        seen += line
    time.sleep(0.5)
    process.send_signal(stop)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130
    message = rest.strip().splitlines()[-1]
    assert "interrupted (run long.npy:" in message and "of 3000 done" in message, message
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    assert json.loads((out / "report.json").read_text()) == {"earlier": True}


ATHERIS_RUNS = 1500


@pytest.mark.parametrize("name", list(INPUT_KINDS))
def test_coverage_guided_fuzzing_finds_no_crash(name, tmp_path):
    """atheris (libFuzzer) mutates the seed file, guided by the coverage of spikestream's readers; a bounded
    run per kind (tests/fuzz_atheris.py)."""
    pytest.importorskip("atheris", reason="atheris has no wheel for this platform")
    if name == "video-sample" and not _have_sample_video():
        pytest.skip("the opencv-doc sample videos cannot be fetched here")
    script = Path(__file__).with_name("fuzz_atheris.py")
    result = subprocess.run([sys.executable, str(script), name, f"-runs={ATHERIS_RUNS}", "-timeout=20", "-seed=1"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    crash = next(tmp_path.glob("crash-*"), None)
    assert result.returncode == 0 and crash is None, result.stderr[-3000:]
    assert f"Done {ATHERIS_RUNS} runs" in result.stderr
