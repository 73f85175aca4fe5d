"""From a quantized SNN to verified Verilog (E3NE's flow): integer reference, Amaranth generator,
cocotb verification, Yosys synthesis and design-space exploration. ``docs/rtl.md`` has the architecture
and the measured results.

>>> plan = lower(quantized_graph)                       # stages the hardware computes
>>> design = generate(plan, parse_parallel("channels=8,neurons=32,fc2.neurons=10"))
>>> result = verify(design, images, "out/sim")          # bit-exact against IntegerReference, cycles
>>> synthesize(design.write("out/top.v"), design.top, "out/synth").resources
"""

from spikestream.rtl._config import ConfigurationError, LayerParallelism, Parallelism, parse_parallel
from spikestream.rtl._lowering import ConvStage, HardwarePlan, LinearStage, UnsupportedLayerError, lower
from spikestream.rtl.compiler import CompileOptions, compile_model
from spikestream.rtl.dse import (
    CycleModel,
    DesignEstimate,
    Exploration,
    ResourceModel,
    calibrate_cycles,
    calibrate_resources,
    check_fits,
    estimate,
    explore,
    latency_cycles,
    pareto_front,
)
from spikestream.rtl.generate import Accelerator, GeneratedDesign, generate
from spikestream.rtl.reference import IntegerReference, ReferenceResult, float_quantized_logits, run_reference
from spikestream.rtl.synth import (
    PowerEstimate,
    Resources,
    SynthesisError,
    estimate_power,
    parse_stat_json,
    synthesize,
)
from spikestream.rtl.verify import SimulationError, VerificationResult, verify

__all__ = [
    "Accelerator",
    "CompileOptions",
    "ConfigurationError",
    "ConvStage",
    "CycleModel",
    "DesignEstimate",
    "Exploration",
    "GeneratedDesign",
    "HardwarePlan",
    "IntegerReference",
    "LayerParallelism",
    "LinearStage",
    "Parallelism",
    "PowerEstimate",
    "ReferenceResult",
    "ResourceModel",
    "Resources",
    "SimulationError",
    "SynthesisError",
    "UnsupportedLayerError",
    "VerificationResult",
    "calibrate_cycles",
    "calibrate_resources",
    "check_fits",
    "compile_model",
    "estimate",
    "estimate_power",
    "explore",
    "float_quantized_logits",
    "generate",
    "latency_cycles",
    "lower",
    "pareto_front",
    "parse_parallel",
    "parse_stat_json",
    "run_reference",
    "synthesize",
    "verify",
]
