"""Hardware models that consume a Trace: energy tables, PE-array (FPGA), neuromorphic and sensor
targets, and the schedulers that balance work over processing elements.

>>> result = simulate(trace, "fpga", "kwbs", device="XC7Z035", processing_elements=16)
>>> result.fps, result.energy_j_per_frame, result.balance_ratio
"""

from spikestream.hw import _fpga, _neuromorphic, _sensor  # noqa: F401  (register the targets)
from spikestream.hw._energy import (
    PRECISIONS,
    EnergyBreakdown,
    EnergyEstimate,
    energy_report,
    estimate_energy,
    per_frame_compute_energy,
)
from spikestream.hw._fpga import FPGATarget, max_processing_elements, work_units
from spikestream.hw._geometry import (
    GeometryError,
    LayerGeometry,
    attach_geometry,
    layer_geometry,
    trace_geometry,
)
from spikestream.hw._neuromorphic import LayerPlacement, NeuromorphicTarget, partition, place_layer
from spikestream.hw._options import HardwareOptions, run_hardware
from spikestream.hw._schedulers import (
    SCHEDULERS,
    Schedule,
    ScheduleError,
    Scheduler,
    balance_ratio,
    lpt_assignment,
    make_scheduler,
    register_scheduler,
    static_assignment,
)
from spikestream.hw._sensor import (
    LINK_FORMATS,
    SensorTarget,
    bandwidth_sweep,
    closed_form_bandwidth_reduction,
    decode_frame,
    encode_frame,
    format_bits,
)
from spikestream.hw._targets import TARGETS, HardwareResult, Target, TargetError, make_target, register_target, simulate

__all__ = [
    "LINK_FORMATS",
    "PRECISIONS",
    "SCHEDULERS",
    "TARGETS",
    "EnergyBreakdown",
    "EnergyEstimate",
    "FPGATarget",
    "GeometryError",
    "HardwareOptions",
    "HardwareResult",
    "LayerGeometry",
    "LayerPlacement",
    "NeuromorphicTarget",
    "Schedule",
    "ScheduleError",
    "Scheduler",
    "SensorTarget",
    "Target",
    "TargetError",
    "attach_geometry",
    "balance_ratio",
    "bandwidth_sweep",
    "closed_form_bandwidth_reduction",
    "decode_frame",
    "encode_frame",
    "energy_report",
    "estimate_energy",
    "format_bits",
    "layer_geometry",
    "lpt_assignment",
    "make_scheduler",
    "make_target",
    "max_processing_elements",
    "partition",
    "per_frame_compute_energy",
    "place_layer",
    "register_scheduler",
    "register_target",
    "run_hardware",
    "simulate",
    "static_assignment",
    "trace_geometry",
    "work_units",
]
