"""Hardware study options of the CLI (``simulate``, ``run --target``) and the report sections they give."""

from __future__ import annotations

from dataclasses import dataclass

from spikestream.hw._energy import energy_report
from spikestream.hw._sensor import SensorTarget
from spikestream.hw._targets import HardwareResult, simulate


@dataclass(frozen=True)
class HardwareOptions:
    """Which target runs a trace, and its options (those of other targets are ignored)."""

    target: str = "fpga"  # fpga, neuromorphic or sensor (spikestream.hw.TARGETS)
    schedule: str = "kwbs"  # PE-array schedule (spikestream.hw.SCHEDULERS)
    device: str = "XC7Z035"  # FPGA device preset
    processing_elements: int = 16
    units: str = "auto"  # work units per PE: auto, channel, input_channel or tile
    profile_every: int | None = None  # KWBS profiling interval when the trace marks no keyframes
    balance_threshold: float | None = None  # adaptive KWBS: re-profile when bound / makespan falls below this
    steal: bool = True  # adaptive KWBS: idle PEs take queued units from the busiest at run time
    neuron_update: str = "touched"  # FPGA neuron updates: "touched" (event-driven) or "all" (dense pass)
    chip: str = "loihi2"  # neuromorphic chip preset
    chips: int = 1
    sensor: str = "cis-45nm"  # sensor preset
    adc_bits: int | None = None  # conventional ADC bits (None: the preset's)
    link_format: str = "auto"  # in-sensor link format: bitmap, aer or auto

    def target_options(self) -> dict:
        if self.target == "fpga":
            return {"device": self.device, "processing_elements": self.processing_elements, "units": self.units,
                    "keyframe_every": self.profile_every, "neuron_update": self.neuron_update}
        if self.target == "neuromorphic":
            return {"chip": self.chip, "chips": self.chips}
        if self.target == "sensor":
            return {"sensor": self.sensor, "adc_bits": self.adc_bits, "link_format": self.link_format}
        return {}

    def schedule_options(self) -> dict:
        if self.schedule != "adaptive-kwbs":
            return {}
        options = {} if self.steal else {"steal": False}
        if self.balance_threshold is not None:
            options["threshold"] = self.balance_threshold
        return options


def run_hardware(trace, options: HardwareOptions) -> tuple[HardwareResult, dict, dict]:
    """Simulate ``trace`` on the chosen target -> (result, report.json sections, energy report).

    The sections are ``hardware`` (DESIGN.md §4 keys), ``energy`` (compute-only and memory-inclusive
    SNN vs ANN with break-even activities) and, for the sensor target, ``sensor``.
    """
    result = simulate(trace, options.target, options.schedule, options.schedule_options(),
                      **options.target_options())
    energy = energy_report(trace)
    sections = {"hardware": result.hardware_dict(), "energy": energy}
    if options.target == "sensor":
        sections["sensor"] = SensorTarget.sensor_dict(result)
    return result, sections, energy
