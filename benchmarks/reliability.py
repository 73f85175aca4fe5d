"""Malformed-input campaign: many damaged copies of every input kind, each read once; writes
docs/reliability.md (and .json) with, per kind, how many were tried and what happened.

The damages and readers are those of tests/_fuzzing.py (the CI test runs a bounded number of them with
hypothesis); here they are drawn from a seeded generator, ``--trials`` per kind. A *finding* is any
outcome other than "accepted" or "clear error" (another exception, or a hang past the deadline);
the run lists every finding with the damage that reproduces it.

    .venv/bin/python benchmarks/reliability.py                 # 300 trials per kind
    .venv/bin/python benchmarks/reliability.py --trials 50     # a quick look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fuzzing harness lives with the tests that run it in CI

from _fuzzing import DEADLINE_S, INPUT_KINDS, random_damage, trial  # noqa: E402
from spikestream import __version__  # noqa: E402
from spikestream._progress import progress  # noqa: E402
from spikestream.report import atomic_write_text  # noqa: E402

# What the harness found while it was written, each fixed in the reader and now covered by it.
FIXED_FINDINGS = (
    ("nir", "h5py raised RuntimeError (\"Link iteration failed\") on a damaged group table: now a NIRFormatError"),
    ("trace", "zlib.error on damaged deflate data, NotImplementedError on a flipped compression-method field and "
              "(found by atheris) RuntimeError on a set 'encrypted' flag escaped Trace.load: now a TraceFormatError"),
    ("frame-array", "(found by atheris) a damaged .npy header, which NumPy parses as a Python literal, raised "
                    "tokenize.TokenError through np.load: now a VideoError (Trace.load catches it too)"),
    ("nir", "(found by atheris) a damaged header declaring a 2 GB chunk made h5py allocate it: load_nir now "
            "refuses datasets that declare far more bytes than the file holds"),
    ("video-written", "PyAV raised UnicodeDecodeError while decoding a damaged metadata tag on open: tags are now "
                      "decoded with errors replaced (they are not used), so the video still plays"),
)


def campaign(trials: int, seed: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, kind in INPUT_KINDS.items():
            rng = np.random.default_rng([seed, len(name)])
            seed_file = kind.make_seed(folder)
            counts, findings, damages, examples = Counter(), [], Counter(), {}
            start = time.perf_counter()
            for _ in progress(range(trials), total=trials, description=name):
                damage = random_damage(rng)
                outcome = trial(kind, seed_file, damage, folder)
                counts[outcome.result] += 1
                damages[damage.kind] += 1
                if outcome.result == "finding":
                    findings.append({"damage": asdict(damage), "detail": outcome.detail})
                elif outcome.result == "clear error":
                    examples.setdefault(outcome.detail.split(":")[0][:60], outcome.detail[:160])
            results[name] = {"description": kind.description, "seed_bytes": seed_file.stat().st_size,
                             "trials": trials, "outcomes": dict(counts), "damages": dict(damages),
                             "findings": findings, "wall_s": time.perf_counter() - start,
                             "example_errors": list(examples.values())[:3]}
    return results


def markdown(results: dict, meta: dict) -> str:
    lines = ["# Reliability: malformed inputs", "",
             "Produced by `benchmarks/reliability.py` (raw numbers in `reliability.json`). Every input kind a user",
             "hands to spikestream gets damaged copies of a valid file — cut short, bits flipped, a run of bytes",
             "overwritten with noise, or a piece of the file spliced in elsewhere — and each copy is read once by",
             "the reader the CLI uses. Two outcomes are acceptable: the reader *accepts* the file (some damage is",
             "harmless, e.g. a flipped bit in compressed video payload still decodes) or it raises a *clear error*,",
             "a one-line `InputError` naming the file, which the CLI prints before exiting with status 2. Anything",
             f"else is a *finding*: another exception, a multi-line message, or a hang past {DEADLINE_S} s.", "",
             f"{meta['trials']} trials per kind, seed {meta['seed']}, spikestream {meta['version']}, "
             f"{meta['wall_s']:.0f} s in all.", "",
             "| input kind | seed file | trials | accepted | clear error | findings (crash / hang) |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        o = r["outcomes"]
        lines.append(f"| `{name}` | {r['description']} ({r['seed_bytes']:,} B) | {r['trials']} | "
                     f"{o.get('accepted', 0)} | {o.get('clear error', 0)} | {o.get('finding', 0)} |")
    findings = [(name, f) for name, r in results.items() for f in r["findings"]]
    lines += ["", "## Findings", ""]
    if findings:
        lines += [f"- `{name}`: {f['detail']} (damage {f['damage']})" for name, f in findings]
    else:
        lines.append("None: every damaged file was accepted or refused with a clear one-line error.")
    lines += ["", "Found and fixed while the harness was written (each now one of the trials above):", ""]
    lines += [f"- `{name}`: {what}" for name, what in FIXED_FINDINGS]
    lines += ["", "## Examples of the errors users see", ""]
    for name, r in results.items():
        for example in r["example_errors"][:2]:
            lines.append(f"- `{name}`: {example}")
    lines += ["", "## What else guards the outputs", "",
              "- Every file spikestream writes goes through `spikestream._atomic.atomic_path`: a hidden temporary",
              "  file beside the target, renamed over it only when complete and deleted on any exception, so a",
              "  failed or interrupted run leaves earlier complete outputs as they were and no partial file",
              "  (`tests/test_fuzz.py::test_failed_run_keeps_the_earlier_report`).",
              "- Ctrl-C and SIGTERM during `spikestream run` exit with status 130 and a line saying how far the run",
              "  got (`interrupted (run clip.avi: 37 of 300 done)`), with no partial file in the output folder",
              "  (`tests/test_fuzz.py::test_interrupted_run_leaves_no_partial_files`, both signals).",
              "- External tools (apt-get, dpkg-deb, Yosys, Icarus Verilog, Verilator) are called with argument",
              "  lists, never a shell, with timeouts; their stderr is shown when they fail.",
              "- No pickle: weights are safetensors, traces and caches `.npz` read with `allow_pickle=False`.",
              "- The CI run (`make test`) runs the same harness with hypothesis, 25 damaged copies per kind, and",
              "  coverage-guided fuzzing with atheris (libFuzzer) from the same seed files, 1,500 runs per kind",
              "  (`tests/fuzz_atheris.py KIND -runs=N` runs longer campaigns).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="damaged copies per input kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = campaign(args.trials, args.seed)
    meta = {"trials": args.trials, "seed": args.seed, "version": __version__, "wall_s": time.perf_counter() - start}
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"meta": meta, "results": results}, indent=1))
    atomic_write_text(args.out, markdown(results, meta))
    found = sum(len(r["findings"]) for r in results.values())
    print(f"wrote {args.out}: {found} finding(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
