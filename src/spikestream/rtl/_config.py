"""Parallelism of the generated design: typed, validated against the stages, parsed from ``--parallel``.

Levels (E3NE's, mapped onto this design; ``docs/rtl.md`` draws them):

- ``pixels``: output pixels of one row computed at once by a convolution unit (0: the whole used row);
- ``kernel_rows``: kernel rows summed per cycle; the unit reads that many input rows per cycle from
  replicated activation banks;
- ``channels``: output channels whose weights are packed into one weight-memory word (output-channel
  packing): they share the spikes and one memory read;
- ``units``: convolution units duplicated, each with its own weight memory, on further output channels;
- ``neurons``: neurons of a linear unit computed in parallel (one weight word holds all of them).

A layer computes ``channels × units`` output channels at a time, which must divide its C_out; a linear
layer's ``neurons`` must divide its out_features. Every value can be set for all layers or for one
(``conv2.pixels=10``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from spikestream.errors import InputError
from spikestream.rtl._lowering import ConvStage, HardwarePlan, LinearStage, Stage

LEVELS = ("pixels", "kernel_rows", "channels", "units", "neurons")


class ConfigurationError(InputError):
    """A parallelism that the layer or the device cannot take; the message says what would fit."""


@dataclass(frozen=True)
class LayerParallelism:
    """Parallelism of one layer (fields not used by its kind are ignored)."""

    pixels: int = 0  # conv: output pixels of a row per pass (0: the whole used row)
    kernel_rows: int = 1  # conv: kernel rows per cycle (replicated input banks)
    channels: int = 8  # conv: output channels packed per weight word
    units: int = 1  # conv: duplicated units (separate weight memories)
    neurons: int = 16  # linear: parallel neurons

    def __post_init__(self):
        for name in LEVELS:
            value = getattr(self, name)
            minimum = 0 if name == "pixels" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigurationError(f"parallelism {name} must be an integer >= {minimum}, not {value!r}")


@dataclass(frozen=True)
class Parallelism:
    """Default levels plus per-layer overrides; ``for_stage`` resolves and validates one layer."""

    default: LayerParallelism = LayerParallelism()
    overrides: tuple[tuple[str, LayerParallelism], ...] = ()  # (layer name, levels), sorted by name

    def for_layer(self, name: str) -> LayerParallelism:
        return dict(self.overrides).get(name, self.default)

    def for_stage(self, stage: Stage) -> LayerParallelism:
        return resolve(stage, self.for_layer(stage.name))

    def text(self, plan: HardwarePlan | None = None) -> str:
        """The ``--parallel`` form, e.g. ``channels=8,neurons=32,conv2.pixels=10``: the levels that differ from
        ``LayerParallelism()`` (with a plan: only the levels each layer uses, per layer)."""
        if plan is not None:
            parts = []
            for stage in plan.stages:
                levels = self.for_stage(stage)
                keys = ("neurons",) if isinstance(stage, LinearStage) else ("pixels", "kernel_rows", "channels",
                                                                            "units")
                parts.extend(f"{stage.name}.{k}={getattr(levels, k)}" for k in keys)
            return ",".join(parts)
        base = LayerParallelism()
        parts = [f"{k}={getattr(self.default, k)}" for k in LEVELS if getattr(self.default, k) != getattr(base, k)]
        for name, levels in self.overrides:
            changed = [k for k in LEVELS if getattr(levels, k) != getattr(self.default, k)]
            parts.extend(f"{name}.{k}={getattr(levels, k)}" for k in changed)
        return ",".join(parts) or "defaults"

    def as_dict(self, plan: HardwarePlan) -> dict:
        """Resolved levels per layer, for report.json."""
        out = {}
        for stage in plan.stages:
            levels = self.for_stage(stage)
            keys = ("neurons",) if isinstance(stage, LinearStage) else ("pixels", "kernel_rows", "channels", "units")
            out[stage.name] = {k: getattr(levels, k) for k in keys}
        return out

    @classmethod
    def per_layer(cls, levels: dict[str, LayerParallelism], default: LayerParallelism | None = None) -> Parallelism:
        return cls(default or LayerParallelism(), tuple(sorted(levels.items())))


def parse_parallel(text: str | None, plan: HardwarePlan | None = None) -> Parallelism:
    """``"pixels=13,channels=8,conv2.kernel_rows=3,fc1.neurons=32"`` → Parallelism (None or "": defaults)."""
    default = LayerParallelism()
    layer_changes: dict[str, dict[str, int]] = {}
    global_changes: dict[str, int] = {}
    for item in (text or "").replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigurationError(f"--parallel items look like LEVEL=N or LAYER.LEVEL=N, not {item!r}")
        layer, _, level = key.strip().rpartition(".")
        if level not in LEVELS:
            raise ConfigurationError(f"unknown parallelism level {level!r} in {item!r}; levels: {', '.join(LEVELS)}")
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"--parallel {key} needs an integer, not {value!r}") from None
        if layer:
            if plan is not None and layer not in [s.name for s in plan.stages]:
                raise ConfigurationError(f"--parallel names layer {layer!r}, but the model's layers are "
                                         f"{', '.join(s.name for s in plan.stages)}")
            layer_changes.setdefault(layer, {})[level] = number
        else:
            global_changes[level] = number
    default = dataclasses.replace(default, **global_changes)
    overrides = {name: dataclasses.replace(default, **changes) for name, changes in layer_changes.items()}
    return Parallelism.per_layer(overrides, default)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def pixel_options(stage: ConvStage) -> list[int]:
    """Useful ``pixels`` values of a conv layer: multiples of the pooling width that split the used row
    into as few passes as possible (each count of passes once), the whole row last."""
    width = stage.used_conv_shape[1]
    pool = stage.pool[1]
    options = []
    for passes in range(width // pool, 0, -1):
        pixels = -(-width // passes)
        pixels = -(-pixels // pool) * pool
        if pixels not in options and -(-width // pixels) == passes:
            options.append(pixels)
    return options


def resolve(stage: Stage, levels: LayerParallelism) -> LayerParallelism:
    """Check ``levels`` against the layer and fill in ``pixels=0`` (the whole row)."""
    if isinstance(stage, LinearStage):
        out = stage.output_shape[0]
        if out % levels.neurons:
            raise ConfigurationError(f"{stage.name}: neurons={levels.neurons} must divide its {out} outputs; "
                                     f"choose one of {divisors(out)}")
        return levels
    c_out = stage.output_shape[0]
    per_pass = levels.channels * levels.units
    if c_out % per_pass:
        raise ConfigurationError(f"{stage.name}: channels x units = {levels.channels} x {levels.units} = {per_pass} "
                                 f"must divide its {c_out} output channels; products that fit: {divisors(c_out)}")
    k_h = stage.kernel[0]
    if levels.kernel_rows > k_h:
        raise ConfigurationError(f"{stage.name}: kernel_rows={levels.kernel_rows} exceeds its kernel height {k_h}")
    width, pool = stage.used_conv_shape[1], stage.pool[1]
    pixels = levels.pixels or width
    if pixels % pool:
        raise ConfigurationError(f"{stage.name}: pixels={pixels} must be a multiple of the pooling width {pool}")
    if pixels > width:
        raise ConfigurationError(f"{stage.name}: pixels={pixels} exceeds the {width} output pixels of a row it uses")
    return dataclasses.replace(levels, pixels=pixels)
