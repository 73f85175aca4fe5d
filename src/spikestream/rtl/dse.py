"""Design-space exploration: an analytical latency and resource model of the generated accelerator,
calibrated on synthesized and simulated designs, the configurations that fit a device, their Pareto
front (LUTs vs latency) and the fastest that fits.

Latency (cycles, exact by construction of the controllers in ``rtl._components``)::

    conv layer    G·H_p·(S·p_h·(T·C_in·⌈k_h/R⌉ + r) + C) + 1     G = C_out / C, C = channels·units,
                                                                  S = row segments, R = kernel rows
    linear layer  G·(T·F_in + r) + 1                              G = out_features / neurons
    image         beats + Σ layers + g·L + o + outputs + words − 1

with r = 4 (two pipeline cycles, the offset, the readout), g = 2 cycles between layers and o = 2
(``CycleModel``; ``calibrate_cycles`` refits r, g and o by least squares on measured points). With two
images in flight the ping-pong buffers overlap layers: the interval between images is the busiest layer.

Resources: LUTs and flip-flops are linear in structural counts of each layer (``layer_features``:
bits of the spike-gated adders and accumulators of every lane, select and multiplexer inputs, per-layer
control), with coefficients fitted on synthesized designs (``calibrate_resources``, stored in
``presets/rtl-model.toml``). Memories are placed as Yosys ``synth_xilinx`` places them (``memory_cost``):
block RAM counted with the 7-series aspect ratios, distributed RAM and ROMs in logic as LUTs and output
flip-flops added to the fitted logic.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from spikestream.config import FPGADevice, PresetError, read_preset
from spikestream.rtl._components import PIPELINE_DRAIN, READOUT_CYCLES, lane_widths, signed_width
from spikestream.rtl._config import (
    ConfigurationError,
    LayerParallelism,
    Parallelism,
    divisors,
    pixel_options,
    resolve,
)
from spikestream.rtl._lowering import HardwarePlan, LinearStage, Stage, requantize_offset
from spikestream.rtl.generate import DEFAULT_PIXELS_PER_BEAT, buffer_layouts

MODEL_PRESET = "rtl-model"
# 7-series block RAM shapes (width, depth, BRAM36 equivalents): RAMB36 and RAMB18, simple dual port
BRAM_SHAPES = ((72, 512, 1.0), (36, 1024, 1.0), (18, 2048, 1.0), (9, 4096, 1.0), (4, 8192, 1.0), (2, 16384, 1.0),
               (1, 32768, 1.0), (36, 512, 0.5), (18, 1024, 0.5), (9, 2048, 0.5), (4, 4096, 0.5), (2, 8192, 0.5),
               (1, 16384, 0.5))
# How Yosys 0.23 synth_xilinx maps a memory with one synchronous read port, found by synthesizing single
# memories: a ROM goes to logic while depth·width/64 stays below the cost of its block RAMs (257 per RAMB36
# in Yosys' brams_xc4v.txt), one LUT per 64 words of each bit; a RAM of at most 64 words goes to distributed
# RAM (RAM32M: 32 x 6 bits, RAM64M: 64 x 3 bits, 4 LUTs each), a deeper one to block RAM.
ROM_LOGIC_BITS_PER_COST = 64
BRAM36_COST = 257
LUTRAM_MAX_DEPTH = 64


# --- latency -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CycleModel:
    """Overheads of the cycle model (module docstring); the defaults are the controllers' own."""

    row_overhead: float = PIPELINE_DRAIN + READOUT_CYCLES  # r: cycles after the last issue of a row or group
    layer_gap: float = 2.0  # g: from one layer's done to the next one's first busy cycle
    io_overhead: float = 2.0  # o: commit of the input image and the output buffer's first read


def layer_terms(stage: Stage, levels: LayerParallelism, bits: int) -> tuple[int, int]:
    """(cycles without the row overheads, number of row passes or neuron groups) of one layer."""
    if isinstance(stage, LinearStage):
        groups = stage.output_shape[0] // levels.neurons
        return groups * bits * stage.input_shape[0] + 1, groups
    c_in = stage.input_shape[0]
    per_group = levels.channels * levels.units
    groups = stage.output_shape[0] // per_group
    pooled_rows = stage.output_shape[1]
    segments = -(-stage.used_conv_shape[1] // levels.pixels)
    passes = groups * pooled_rows * segments * stage.pool[0]
    row_groups = -(-stage.kernel[0] // levels.kernel_rows)
    return passes * bits * c_in * row_groups + groups * pooled_rows * per_group + 1, passes


def layer_cycles(stage: Stage, levels: LayerParallelism, bits: int, model: CycleModel = CycleModel()) -> float:
    base, passes = layer_terms(stage, levels, bits)
    return base + model.row_overhead * passes


def latency_terms(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int) -> tuple[float, list[float]]:
    """(fixed cycles, [row passes, layers, 1]) of an image's latency: latency = fixed + features · overheads."""
    fixed, passes = 0.0, 0.0
    for stage in plan.stages:
        base, count = layer_terms(stage, parallelism.for_stage(stage), plan.bits)
        fixed += base
        passes += count
    inputs = math.prod(plan.input_shape)
    layouts = buffer_layouts(plan, parallelism, pixels_per_beat)
    outputs = math.prod(plan.output_shape)
    fixed += inputs // pixels_per_beat + outputs + layouts[-1].depth - 1
    return fixed, [passes, float(len(plan.stages)), 1.0]


def latency_cycles(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int = DEFAULT_PIXELS_PER_BEAT,
                   model: CycleModel = CycleModel()) -> float:
    """Cycles from the first input beat accepted to the last output accepted, one image alone."""
    fixed, (passes, layers, one) = latency_terms(plan, parallelism, pixels_per_beat)
    return fixed + model.row_overhead * passes + model.layer_gap * layers + model.io_overhead * one


def calibrate_cycles(points: list[tuple[HardwarePlan, Parallelism, int, float]]) -> tuple[CycleModel, list[float]]:
    """Least-squares fit of the overheads to measured latencies [(plan, parallelism, pixels_per_beat,
    cycles)]; returns the model and its relative error on every point."""
    rows, targets = [], []
    for plan, parallelism, beat, measured in points:
        fixed, features = latency_terms(plan, parallelism, beat)
        rows.append(features)
        targets.append(measured - fixed)
    solution, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(targets), rcond=None)
    model = CycleModel(*(float(v) for v in solution)) if len(points) >= 3 else CycleModel()
    errors = [latency_cycles(p, q, b, model) / measured - 1 for p, q, b, measured in points]
    return model, errors


# --- resources ----------------------------------------------------------------------------------------------


FEATURES = ("lane_bits", "select_bits", "register_bits", "layers", "one")


def _offset_bits(stage: Stage) -> int:
    offsets = requantize_offset(stage.bias, stage.shift)
    return signed_width(min(int(offsets.min()), 0), max(int(offsets.max()), 0))


def layer_features(stage: Stage, levels: LayerParallelism, bits: int, weight_bits: int, in_values: int) -> dict:
    """Structural counts of one layer's logic (``FEATURES``) for the LUT and flip-flop models."""
    accumulator, _ = lane_widths(stage, bits)
    readout = accumulator - (stage.shift or 0) if stage.shift is not None else 0  # clip of the shifted value
    if isinstance(stage, LinearStage):
        lanes, taps = levels.neurons, 1
        lane_bits = lanes * (taps * weight_bits + accumulator + readout)
        select_bits = in_values * bits
        register_bits = lanes * (weight_bits + 2 + accumulator)
    else:
        _, _, w_in = stage.input_shape
        w_out = stage.output_shape[2]
        per_group = levels.channels * levels.units
        lanes, taps = per_group * levels.pixels, levels.kernel_rows * stage.kernel[1]
        segments = -(-stage.used_conv_shape[1] // levels.pixels)
        pooling = 2 * bits if stage.pool != (1, 1) else 0
        lane_bits = lanes * (taps * weight_bits + accumulator + readout + pooling)
        select_bits = (w_in * levels.kernel_rows * bits + (levels.pixels * taps * segments if segments > 1 else 0)
                       + (per_group * w_out * bits if per_group > 1 else 0))
        register_bits = (lanes * (weight_bits + taps.bit_length() + 1 + accumulator
                                  + (bits if stage.pool[0] > 1 else 0)) + per_group * w_out * bits)
    return {"lane_bits": lane_bits, "select_bits": select_bits, "register_bits": register_bits, "layers": 1,
            "one": 0}


def memory_shapes(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int) -> list[tuple[int, int, bool]]:
    """(depth, width, read-only) of every memory of the design: buffer banks, weight and offset ROMs."""
    shapes = []
    for layout in buffer_layouts(plan, parallelism, pixels_per_beat):
        depth = 2 << max(1, (max(layout.depth, 1) - 1).bit_length())
        shapes.extend([(depth, layout.word_bits, False)] * layout.banks)
    for stage in plan.stages:
        shapes.extend(rom_shapes(stage, parallelism.for_stage(stage), plan.weight_bits))
    return shapes


def rom_shapes(stage: Stage, levels: LayerParallelism, weight_bits: int) -> list[tuple[int, int, bool]]:
    """(depth, width, read-only) of one layer's weight and offset ROMs."""
    if isinstance(stage, LinearStage):
        groups = stage.output_shape[0] // levels.neurons
        return [(groups * stage.input_shape[0], levels.neurons * weight_bits, True),
                (groups, levels.neurons * _offset_bits(stage), True)]
    per_group = levels.channels * levels.units
    groups = stage.output_shape[0] // per_group
    row_groups = -(-stage.kernel[0] // levels.kernel_rows)
    word = levels.channels * levels.kernel_rows * stage.kernel[1] * weight_bits
    return ([(groups * stage.input_shape[0] * row_groups, word, True)] * levels.units
            + [(groups, per_group * _offset_bits(stage), True)])


def bram36_of(depth: int, width: int) -> float:
    """Fewest 36 Kb block-RAM equivalents holding a depth x width memory (one read, one write port)."""
    return min(math.ceil(width / w) * math.ceil(depth / d) * size for w, d, size in BRAM_SHAPES)


@functools.lru_cache(maxsize=65536)
def memory_cost(depth: int, width: int, read_only: bool) -> tuple[float, int, int]:
    """(BRAM36, LUTs, flip-flops) of one memory as Yosys maps it (``ROM_LOGIC_BITS_PER_COST``)."""
    block = bram36_of(depth, width)
    if read_only:
        if depth * width / ROM_LOGIC_BITS_PER_COST < BRAM36_COST * block:
            return 0.0, width * -(-depth // 64), width  # LUT6 per 64 words and bit, registered output
        return block, 0, 0
    if depth <= LUTRAM_MAX_DEPTH:
        bits_per_cell = 6 if depth <= 32 else 3
        return 0.0, 4 * -(-width // bits_per_cell), width
    return block, 0, 0


@dataclass(frozen=True)
class ResourceModel:
    """LUTs and flip-flops = coefficients · features (``FEATURES``); BRAM from memory shapes."""

    lut: tuple[float, ...] = (1.0, 0.5, 0.0, 150.0, 300.0)  # per feature; defaults before calibration
    flip_flop: tuple[float, ...] = (0.0, 0.0, 1.0, 120.0, 150.0)
    sources: dict = field(default_factory=dict, repr=False)


def load_resource_model(name: str = MODEL_PRESET) -> ResourceModel:
    """The calibrated coefficients of ``presets/rtl-model.toml`` (defaults if the preset is absent)."""
    try:
        table = read_preset(name)
    except PresetError:
        return ResourceModel()
    section = table.get("resources", {})

    def vector(prefix: str, default):
        return tuple(float(section[f"{prefix}_{f}"]["value"]) if f"{prefix}_{f}" in section else d
                     for f, d in zip(FEATURES, default, strict=True))

    base = ResourceModel()
    return ResourceModel(
        lut=vector("lut", base.lut), flip_flop=vector("ff", base.flip_flop),
        sources={key: entry["source"] for key, entry in section.items() if isinstance(entry, dict)})


@dataclass(frozen=True)
class DesignEstimate:
    """The model's prediction for one configuration."""

    parallelism: Parallelism
    latency_cycles: float
    interval_cycles: float  # between images when two are in flight (the busiest layer)
    layer_cycles: tuple[float, ...]
    luts: float
    flip_flops: float
    bram36: float
    dsp: int = 0

    def latency_s(self, clock_mhz: float) -> float:
        return self.latency_cycles / (clock_mhz * 1e6)

    def over_budget(self, device: FPGADevice, utilization: float = 1.0) -> list[str]:
        over = []
        for label, used, available in (("LUTs", self.luts, device.luts), ("flip-flops", self.flip_flops,
                                       device.flip_flops), ("BRAM36", self.bram36, device.bram_36kb),
                                       ("DSP slices", self.dsp, device.dsp_slices)):
            if used > available * utilization:
                over.append(f"{label} {used:,.0f} > {available * utilization:,.0f}")
        return over

    def as_dict(self) -> dict:
        return {"latency_cycles": self.latency_cycles, "interval_cycles": self.interval_cycles,
                "layer_cycles": list(self.layer_cycles), "luts": self.luts, "flip_flops": self.flip_flops,
                "bram36": self.bram36, "dsp": self.dsp, "parallelism": self.parallelism.text()}


def design_features(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int) -> np.ndarray:
    """Sum of ``layer_features`` over the layers, plus the design-wide constant."""
    layouts = buffer_layouts(plan, parallelism, pixels_per_beat)
    total = np.zeros(len(FEATURES))
    for index, stage in enumerate(plan.stages):
        total += _layer_vector(stage, parallelism.for_stage(stage), plan.bits, plan.weight_bits,
                               layouts[index].values)
    total[FEATURES.index("one")] = 1.0
    return total


@functools.lru_cache(maxsize=65536)
def _layer_vector(stage: Stage, levels: LayerParallelism, bits: int, weight_bits: int, in_values: int) -> np.ndarray:
    features = layer_features(stage, levels, bits, weight_bits, in_values)
    return np.asarray([features[f] for f in FEATURES], float)


def memory_resources(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int) -> np.ndarray:
    """[BRAM36, LUTs, flip-flops] of the memories."""
    return np.sum([memory_cost(*shape) for shape in memory_shapes(plan, parallelism, pixels_per_beat)], axis=0)


def estimate(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int = DEFAULT_PIXELS_PER_BEAT,
             resources: ResourceModel | None = None, cycles: CycleModel = CycleModel()) -> DesignEstimate:
    """The model's latency and resources of one configuration (raises ``ConfigurationError`` if invalid)."""
    resources = resources or load_resource_model()
    for stage in plan.stages:
        parallelism.for_stage(stage)
    features = design_features(plan, parallelism, pixels_per_beat)
    bram, memory_luts, memory_flip_flops = memory_resources(plan, parallelism, pixels_per_beat)
    per_layer = tuple(layer_cycles(s, parallelism.for_stage(s), plan.bits, cycles) for s in plan.stages)
    return DesignEstimate(parallelism, latency_cycles(plan, parallelism, pixels_per_beat, cycles), max(per_layer),
                          per_layer, float(features @ np.asarray(resources.lut) + memory_luts),
                          float(features @ np.asarray(resources.flip_flop) + memory_flip_flops), float(bram))


def calibrate_resources(points: list[tuple[HardwarePlan, Parallelism, int, float, float]],
                        base: ResourceModel | None = None) -> tuple[ResourceModel, list[tuple[float, float]]]:
    """Non-negative least-squares fit of the LUT and flip-flop coefficients to synthesized designs
    [(plan, parallelism, pixels_per_beat, luts, flip_flops)], less their memories; returns the model and
    its relative errors."""
    base = base or ResourceModel()
    rows, luts, flops = [], [], []
    for plan, parallelism, beat, lut, flip_flop in points:
        rows.append(design_features(plan, parallelism, beat))
        _, memory_luts, memory_flip_flops = memory_resources(plan, parallelism, beat)
        luts.append(lut - memory_luts)
        flops.append(flip_flop - memory_flip_flops)
    matrix = np.asarray(rows)
    lut_coefficients = _nonnegative_least_squares(matrix, np.asarray(luts))
    ff_coefficients = _nonnegative_least_squares(matrix, np.asarray(flops))
    model = dataclasses.replace(base, lut=tuple(lut_coefficients), flip_flop=tuple(ff_coefficients))
    errors = []
    for plan, parallelism, beat, lut, flip_flop in points:
        guess = estimate(plan, parallelism, beat, model)
        errors.append((guess.luts / lut - 1, guess.flip_flops / flip_flop - 1))
    return model, errors


def _nonnegative_least_squares(matrix: np.ndarray, target: np.ndarray, iterations: int = 200) -> np.ndarray:
    """min ‖A x − b‖ with x ≥ 0, by active-set elimination of negative coefficients (small problems)."""
    active = np.ones(matrix.shape[1], bool)
    solution = np.zeros(matrix.shape[1])
    for _ in range(iterations):
        if not active.any():
            break
        scale = np.maximum(np.abs(matrix[:, active]).max(0), 1e-12)
        x, *_ = np.linalg.lstsq(matrix[:, active] / scale, target, rcond=None)
        x = x / scale
        if (x >= 0).all():
            solution[:] = 0
            solution[active] = x
            break
        indices = np.flatnonzero(active)
        active[indices[np.argmin(x)]] = False
    return solution


# --- exploration --------------------------------------------------------------------------------------------


def layer_options(stage: Stage, max_units: int = 4, max_neurons: int = 256) -> list[LayerParallelism]:
    """Every valid parallelism of one layer within the enumeration bounds."""
    if isinstance(stage, LinearStage):
        return [LayerParallelism(neurons=n) for n in divisors(stage.output_shape[0]) if n <= max_neurons]
    options = []
    c_out = stage.output_shape[0]
    for pixels, rows in itertools.product(pixel_options(stage), range(1, stage.kernel[0] + 1)):
        for channels in divisors(c_out):
            for units in range(1, max_units + 1):
                if c_out % (channels * units) == 0:
                    options.append(resolve(stage, LayerParallelism(pixels, rows, channels, units)))
    return options


@dataclass(frozen=True)
class Exploration:
    """Every enumerated configuration's estimate, the feasible ones, their Pareto front, and the choice."""

    candidates: list[DesignEstimate]
    feasible: list[DesignEstimate]
    pareto: list[DesignEstimate]  # feasible, no other is both faster and smaller in LUTs; by LUTs
    best: DesignEstimate | None  # the fastest feasible (fewest LUTs among equally fast)
    device: FPGADevice
    budget: dict  # resource limits used


def explore(plan: HardwarePlan, device: FPGADevice, pixels_per_beat: int = DEFAULT_PIXELS_PER_BEAT,
            max_luts: float | None = None, utilization: float = 1.0, per_layer_keep: int = 12,
            resources: ResourceModel | None = None, cycles: CycleModel = CycleModel()) -> Exploration:
    """Enumerate configurations, keep those that fit ``device`` (times ``utilization``, and ``max_luts``),
    and return their LUT-latency Pareto front and the fastest.

    The models are additive over layers, so each layer's options are first reduced to its own
    cycles-LUTs Pareto set (at most ``per_layer_keep`` points, spread over the front); the product of those
    sets is then estimated as whole designs."""
    resources = resources or load_resource_model()
    per_layer = []
    for index, stage in enumerate(plan.stages):
        scored = []
        for levels in layer_options(stage):
            trial = Parallelism.per_layer({stage.name: levels})
            try:
                in_values = buffer_layouts(plan, _complete(plan, trial, stage.name), pixels_per_beat)[index].values
            except ConfigurationError:
                continue
            features = layer_features(stage, levels, plan.bits, plan.weight_bits, in_values)
            luts = sum(features[f] * c for f, c in zip(FEATURES, resources.lut, strict=True))
            luts += sum(memory_cost(*shape)[1] for shape in rom_shapes(stage, levels, plan.weight_bits))
            scored.append((layer_cycles(stage, levels, plan.bits, cycles), luts, levels))
        per_layer.append(_thin(_pareto_points(scored), per_layer_keep))
    candidates = []
    for combination in itertools.product(*per_layer):
        parallelism = Parallelism.per_layer({s.name: levels for s, (_, _, levels) in zip(plan.stages, combination,
                                                                                          strict=True)})
        try:
            candidates.append(estimate(plan, parallelism, pixels_per_beat, resources, cycles))
        except ConfigurationError:
            continue
    limit = device.luts * utilization if max_luts is None else min(max_luts, device.luts * utilization)
    feasible = [c for c in candidates if not c.over_budget(device, utilization) and c.luts <= limit]
    pareto = pareto_front(feasible)
    best = min(feasible, key=lambda c: (c.latency_cycles, c.luts)) if feasible else None
    budget = {"luts": limit, "flip_flops": device.flip_flops * utilization, "bram36": device.bram_36kb * utilization,
              "dsp": device.dsp_slices * utilization}
    return Exploration(candidates, feasible, pareto, best, device, budget)


def _complete(plan: HardwarePlan, parallelism: Parallelism, name: str) -> Parallelism:
    """A whole-design parallelism that uses ``parallelism`` for ``name`` and valid minimal levels elsewhere."""
    levels = dict(parallelism.overrides)
    for stage in plan.stages:
        if stage.name not in levels:
            levels[stage.name] = (LayerParallelism(neurons=1) if isinstance(stage, LinearStage)
                                  else LayerParallelism(channels=1))
    return Parallelism.per_layer(levels)


def _pareto_points(points: list[tuple[float, float, object]]) -> list[tuple[float, float, object]]:
    ordered = sorted(points, key=lambda p: (p[1], p[0]))
    front, best = [], math.inf
    for point in ordered:
        if point[0] < best:
            front.append(point)
            best = point[0]
    return front


def _thin(front: list, keep: int) -> list:
    if len(front) <= keep:
        return front
    indices = np.unique(np.round(np.linspace(0, len(front) - 1, keep)).astype(int))
    return [front[i] for i in indices]


def pareto_front(estimates: list[DesignEstimate]) -> list[DesignEstimate]:
    """Designs that no other design beats in both LUTs and latency, ordered by LUTs."""
    ordered = sorted(estimates, key=lambda e: (e.luts, e.latency_cycles))
    front, best = [], math.inf
    for item in ordered:
        if item.latency_cycles < best:
            front.append(item)
            best = item.latency_cycles
    return front


def check_fits(estimate_: DesignEstimate, device: FPGADevice) -> None:
    """Reject, before any synthesis, a configuration whose estimate exceeds the device."""
    over = estimate_.over_budget(device)
    if over:
        raise ConfigurationError(f"configuration {estimate_.parallelism.text()} does not fit {device.name}: "
                                 f"{'; '.join(over)} (estimated); lower the parallelism or choose a larger device")


def pareto_plot(exploration: Exploration, clock_mhz: float, chosen: DesignEstimate | None = None,
                measured: list[tuple[float, float]] | None = None) -> bytes:
    """PNG: every candidate (grey), the feasible ones, the Pareto front, the device LUT budget, and
    synthesized points (``measured``: (LUTs, latency µs))."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    figure = Figure(figsize=(7, 4.5), dpi=120)
    axes = figure.add_subplot()
    scale = 1e6 / (clock_mhz * 1e6)
    everything = np.asarray([(c.luts, c.latency_cycles * scale) for c in exploration.candidates])
    if everything.size:
        axes.scatter(everything[:, 0], everything[:, 1], s=4, color="0.8", label="enumerated")
    feasible = np.asarray([(c.luts, c.latency_cycles * scale) for c in exploration.feasible])
    if feasible.size:
        axes.scatter(feasible[:, 0], feasible[:, 1], s=6, color="tab:blue", label=f"fits {exploration.device.name}")
    front = np.asarray([(c.luts, c.latency_cycles * scale) for c in exploration.pareto])
    if front.size:
        axes.step(front[:, 0], front[:, 1], where="post", color="tab:orange", label="Pareto front")
    axes.axvline(exploration.budget["luts"], color="tab:red", linestyle="--", linewidth=1, label="LUT budget")
    if chosen is not None:
        axes.scatter([chosen.luts], [chosen.latency_cycles * scale], marker="*", s=150, color="tab:green",
                     label="chosen", zorder=5)
    if measured:
        points = np.asarray(measured)
        axes.scatter(points[:, 0], points[:, 1], marker="x", s=60, color="black", label="synthesized", zorder=6)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_minor_formatter(NullFormatter())  # the labels of minor ticks overlap on a log axis
    axes.set_xlabel("LUTs (model; synthesized designs: Yosys)")
    axes.set_ylabel(f"latency per image, µs at {clock_mhz:g} MHz")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()
