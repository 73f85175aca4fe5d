"""Typed configuration: frozen dataclasses filled from the TOML presets in ``spikestream/presets``.

Every constant in a preset is an inline table with its value, its unit and the source it comes from::

    fp32_add = { value = 0.9, unit = "pJ", source = "Horowitz, ISSCC 2014, Fig. 1.1.9: ..." }

A constant without a non-empty ``source`` is a ``PresetError`` when the preset is read, so a table
cannot silently lose its provenance. ``preset_constants`` lists every constant with its source (the
docs table of ``docs/hardware.md`` is generated from it).
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from spikestream.errors import InputError

PRESET_PACKAGE = "spikestream"
PRESET_FOLDER = "presets"


class PresetError(InputError):
    """A preset that is missing, malformed, or has a constant without a source."""


class PresetConstant(NamedTuple):
    key: str  # dotted path inside the preset, e.g. "compute.fp32_add"
    value: float | int | bool | str
    unit: str
    source: str


# --- reading presets ------------------------------------------------------------------------------


def preset_names() -> list[str]:
    """Names of the TOML presets shipped in the package (file stems)."""
    folder = resources.files(PRESET_PACKAGE) / PRESET_FOLDER
    return sorted(Path(entry.name).stem for entry in folder.iterdir() if entry.name.endswith(".toml"))


def _preset_text(name: str) -> tuple[str, str]:
    path = Path(name)
    if path.suffix == ".toml" and path.exists():  # a user's own preset file
        return path.read_text(), str(path)
    entry = resources.files(PRESET_PACKAGE) / PRESET_FOLDER / f"{name}.toml"
    if not entry.is_file():
        raise PresetError(f"unknown preset {name!r}; the package has: {', '.join(preset_names())} "
                          f"(or give the path of a .toml file)")
    return entry.read_text(), f"presets/{name}.toml"


def read_preset(name: str) -> dict:
    """The raw TOML of a preset, checked: every constant carries a value and a non-empty source."""
    text, where = _preset_text(name)
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PresetError(f"cannot read preset {where}: {error}") from None
    for constant in _walk(table, "", where):
        if not isinstance(constant.source, str) or not constant.source.strip():
            raise PresetError(f"preset {where}: constant {constant.key} has no source; write "
                              f'{{ value = ..., unit = "...", source = "where the number comes from" }}')
    return table


def _is_constant(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value


def _walk(table: dict, prefix: str, where: str):
    for key, value in table.items():
        path = f"{prefix}{key}"
        if _is_constant(value):
            yield PresetConstant(path, value["value"], str(value.get("unit", "")), value.get("source", ""))
        elif isinstance(value, dict):
            yield from _walk(value, f"{path}.", where)
        elif key == "description" and isinstance(value, str):
            continue
        else:
            raise PresetError(f"preset {where}: {path} = {value!r} is a bare number; every constant must be "
                              f'{{ value = ..., unit = "...", source = "..." }}')


def preset_constants(name: str) -> list[PresetConstant]:
    """Every constant of a preset with its unit and source, in file order."""
    _, where = _preset_text(name)
    return list(_walk(read_preset(name), "", where))


def _section(table: dict, key: str, where: str) -> dict:
    if key not in table or not isinstance(table[key], dict):
        raise PresetError(f"preset {where} has no [{key}] section")
    return table[key]


def _build(cls, table: dict, where: str):
    """A frozen dataclass from a TOML table whose entries are constants named like the fields."""
    values, sources = {}, {}
    for spec in dataclasses.fields(cls):
        if spec.name in ("name", "sources", "description"):
            continue
        if spec.name not in table:
            if spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING:
                continue
            raise PresetError(f"preset {where} lacks the constant {spec.name!r}")
        entry = table[spec.name]
        if not _is_constant(entry):
            raise PresetError(f"preset {where}: {spec.name} must be {{ value = ..., source = \"...\" }}")
        values[spec.name] = entry["value"]
        sources[spec.name] = entry["source"]
    extra = {"sources": MappingProxyType(sources)}
    if "description" in {f.name for f in dataclasses.fields(cls)}:
        extra["description"] = str(table.get("description", ""))
    return values, extra


# --- energy tables -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ComputeEnergy:
    """Energy of one arithmetic operation, pJ (45 nm, 0.9 V unless the preset says otherwise)."""

    int8_add: float  # 8-bit integer add
    int32_add: float  # 32-bit integer add
    int8_mult: float  # 8-bit integer multiply
    int32_mult: float  # 32-bit integer multiply
    fp16_add: float  # 16-bit float add
    fp16_mult: float  # 16-bit float multiply
    fp32_add: float  # 32-bit float add (the "AC" of the usual SNN energy proxy)
    fp32_mult: float  # 32-bit float multiply (add + mult = the usual 4.6 pJ "MAC")
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)


@dataclass(frozen=True)
class MemoryEnergy:
    """Access energy of the memory levels, pJ per 64-bit word, and the on-chip weight capacity."""

    sram_8kb_64bit: float  # 8 KB SRAM (local buffer / register-file level)
    sram_32kb_64bit: float  # 32 KB SRAM
    sram_1mb_64bit: float  # 1 MB SRAM (global on-chip buffer)
    dram_64bit: float  # off-chip DRAM
    on_chip_weight_bytes: int  # weights above this size are streamed from DRAM every frame
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def local_pj_per_bit(self) -> float:
        return self.sram_8kb_64bit / 64

    @property
    def buffer_pj_per_bit(self) -> float:
        return self.sram_1mb_64bit / 64

    @property
    def dram_pj_per_bit(self) -> float:
        return self.dram_64bit / 64


@dataclass(frozen=True)
class Precision:
    """Number formats of one accelerator design point (bits) and the ops they use."""

    name: str
    weight_bits: int
    activation_bits: int  # ANN activations and graded SNN event values
    state_bits: int  # accumulator / membrane potential
    accumulate: str  # ComputeEnergy field of one accumulate (an SNN synop on a binary event)
    multiply: str  # ComputeEnergy field of one multiply (MAC = multiply + accumulate)
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)


@dataclass(frozen=True)
class EnergyTable:
    """A complete energy table: compute, memory, and the number formats it is used with."""

    name: str
    description: str
    compute: ComputeEnergy
    memory: MemoryEnergy
    precisions: MappingProxyType  # name -> Precision

    def precision(self, name: str) -> Precision:
        if name not in self.precisions:
            raise PresetError(f"unknown precision {name!r}; the energy table {self.name!r} has: "
                              f"{', '.join(self.precisions)}")
        return self.precisions[name]

    def accumulate_pj(self, precision: Precision) -> float:
        return float(getattr(self.compute, precision.accumulate))

    def mac_pj(self, precision: Precision) -> float:
        return float(getattr(self.compute, precision.multiply)) + self.accumulate_pj(precision)


def load_energy_table(name: str = "energy-45nm") -> EnergyTable:
    table = read_preset(name)
    where = f"presets/{name}.toml"
    values, extra = _build(ComputeEnergy, _section(table, "compute", where), where)
    compute = ComputeEnergy(**values, **extra)
    values, extra = _build(MemoryEnergy, _section(table, "memory", where), where)
    memory = MemoryEnergy(**values, **extra)
    precisions = {}
    for precision_name, entry in _section(table, "precision", where).items():
        values, extra = _build(Precision, entry, f"{where} [precision.{precision_name}]")
        precision = Precision(name=precision_name, **values, **extra)
        for op in (precision.accumulate, precision.multiply):
            if op not in {f.name for f in dataclasses.fields(ComputeEnergy)} or op == "sources":
                raise PresetError(f"preset {where}: precision {precision_name} names unknown op {op!r}")
        precisions[precision_name] = precision
    return EnergyTable(name, str(table.get("description", "")), compute, memory, MappingProxyType(precisions))


# --- FPGA devices and PE arrays ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FPGADevice:
    """Resources of one FPGA and the clock/power assumptions used with it."""

    name: str
    description: str
    luts: int  # 6-input LUTs
    flip_flops: int
    bram_36kb: int  # 36 Kb block RAMs
    uram_288kb: int  # 288 Kb UltraRAMs (UltraScale+ only)
    dsp_slices: int
    clock_mhz: float  # PE-array clock assumed for this device
    static_power_w: float  # programmable-logic static power assumed at 25 °C
    pe_dynamic_power_w: float  # dynamic power of one busy PE at clock_mhz
    dram_pj_per_bit: float  # off-chip DDR access energy
    dram_bits_per_cycle: int  # sustained DDR bandwidth at clock_mhz
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @property
    def on_chip_bits(self) -> int:
        return self.bram_36kb * 36 * 1024 + self.uram_288kb * 288 * 1024


@dataclass(frozen=True)
class PECost:
    """Resources and timing of one processing element of the PE array."""

    luts: int
    flip_flops: int
    bram_36kb: int  # local weight / state memory of one PE
    dsp_slices: int
    cycles_per_synop: float  # one accumulate of a weight into a potential per cycle
    neuron_lanes: int  # neuron states updated per cycle per PE in the update pass
    pipeline_cycles: int  # fill + drain of the PE pipeline per layer
    layer_setup_cycles: int  # configuration of a layer (addresses, counters)
    bram_port_bits: int  # width of a PE's local memory port (remapping bandwidth)
    weight_bits: int
    state_bits: int
    control_luts: int  # scheduler, event router and DMA shared by all PEs
    control_flip_flops: int
    control_bram_36kb: int
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)


@dataclass(frozen=True)
class FPGAPreset:
    devices: MappingProxyType  # name -> FPGADevice
    pe: PECost

    def device(self, name: str) -> FPGADevice:
        key = name.upper()
        if key not in self.devices:
            raise PresetError(f"unknown FPGA device {name!r}; presets: {', '.join(self.devices)}")
        return self.devices[key]


def load_fpga_preset(name: str = "fpga") -> FPGAPreset:
    table = read_preset(name)
    where = f"presets/{name}.toml"
    devices = {}
    for device_name, entry in _section(table, "device", where).items():
        values, extra = _build(FPGADevice, entry, f"{where} [device.{device_name}]")
        devices[device_name.upper()] = FPGADevice(name=device_name.upper(), **values, **extra)
    values, extra = _build(PECost, _section(table, "pe", where), where)
    return FPGAPreset(MappingProxyType(devices), PECost(**values, **extra))


# --- neuromorphic chips ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuromorphicChip:
    """A Loihi-like many-core chip: per-core limits, per-operation energy and time, static power."""

    name: str
    description: str
    cores_per_chip: int
    neurons_per_core: int  # neural units (compartments) per core
    synapse_memory_bits: int  # synaptic memory per core
    fan_in_per_core: int  # distinct input axons a core can receive
    weight_bits: int  # bits per stored synapse (weight)
    shared_weights: bool  # convolutional weights stored once per core, not once per connection
    graded_spikes: bool  # events carry a value (sigma-delta); else binary spikes only
    synop_pj: float  # energy per synaptic operation
    neuron_update_pj: float  # energy per neuron update
    spike_pj: float  # energy to send one spike message to a core in the same tile
    hop_pj: float  # energy per mesh hop of a message
    synop_ns: float  # time per synaptic operation (serial within a core)
    neuron_update_ns: float  # time per neuron update
    spike_ns: float  # time to emit one spike message
    barrier_ns: float  # time-step barrier synchronisation
    mean_hops: float  # mean mesh hops between communicating cores
    io_bits_per_s: float  # host → chip input bandwidth
    event_bits: int  # bits of one input event over the I/O link
    static_power_w: float  # per chip
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)


def load_neuromorphic_chip(name: str = "loihi2", preset: str = "neuromorphic") -> NeuromorphicChip:
    table = read_preset(preset)
    where = f"presets/{preset}.toml"
    chips = _section(table, "chip", where)
    if name not in chips:
        raise PresetError(f"unknown neuromorphic chip {name!r}; presets: {', '.join(chips)}")
    values, extra = _build(NeuromorphicChip, chips[name], f"{where} [chip.{name}]")
    return NeuromorphicChip(name=name, **values, **extra)


def neuromorphic_chip_names(preset: str = "neuromorphic") -> list[str]:
    return list(_section(read_preset(preset), "chip", f"presets/{preset}.toml"))


# --- image sensors ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensorModel:
    """A CMOS image sensor and its link to the processor, conventional and with an in-pixel first layer."""

    name: str
    description: str
    adc_bits: int  # bits of a conventional pixel conversion
    adc_fom_fj: float  # Walden figure of merit: energy per conversion step
    pixel_readout_pj: float  # source follower + column readout of one pixel (excluding the ADC)
    in_pixel_mac_pj: float  # one analog multiply-accumulate inside the pixel array
    comparator_pj: float  # one 1-bit spike decision (a 1-bit conversion) per output per step
    link_pj_per_bit: float  # sensor → processor link (serial interface), per transmitted bit
    link_bits_per_s: float  # link bandwidth (all lanes)
    frame_header_bits: int  # frame start/end packet of the link protocol
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def adc_pj(self, bits: int | None = None) -> float:
        """Energy of one conversion, E = FoM · 2^bits (Walden)."""
        return self.adc_fom_fj * 1e-3 * 2 ** (self.adc_bits if bits is None else bits)


def load_sensor(name: str = "cis-45nm", preset: str = "sensor") -> SensorModel:
    table = read_preset(preset)
    where = f"presets/{preset}.toml"
    sensors = _section(table, "sensor", where)
    if name not in sensors:
        raise PresetError(f"unknown sensor {name!r}; presets: {', '.join(sensors)}")
    values, extra = _build(SensorModel, sensors[name], f"{where} [sensor.{name}]")
    return SensorModel(name=name, **values, **extra)


def bits_for(count: int) -> int:
    """Bits needed to address ``count`` distinct items (at least 1)."""
    return max(1, math.ceil(math.log2(max(count, 2))))
