"""The generator: a quantized graph and a parallelism → an Amaranth ``Accelerator`` → Verilog.

    pixels ─> PixelStreamIn ─> buffer 0 ─> unit 0 ─> buffer 1 ─> … ─> buffer L ─> OutputStreamOut ─> outputs
              (radix ROM)     (ping-pong)  (conv or linear unit,                       (one value per beat)
                                            weights in ROMs)
                          LayerController: start / release / commit of every unit and buffer

One unit per synaptic layer (``ConvolutionUnit`` or ``LinearUnit``), ping-pong activation buffers between
them, the layer controller, and streaming I/O with valid/ready handshakes. The Verilog is written by
Amaranth's back end (``amaranth.back.verilog``); nothing here builds HDL text.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from spikestream import ir
from spikestream._progress import status
from spikestream.rtl._components import (
    OUTPUT_LAYOUT,
    ConvolutionUnit,
    LayerController,
    LinearUnit,
    OutputStreamOut,
    PingPongBuffer,
    PixelStreamIn,
)
from spikestream.rtl._config import ConfigurationError, Parallelism
from spikestream.rtl._lowering import ConvStage, HardwarePlan, lower

TOP_NAME = "spikestream_accelerator"
DEFAULT_PIXELS_PER_BEAT = 4  # a 32-bit input stream


@dataclass(frozen=True)
class BufferLayout:
    """One activation buffer: ``depth`` words of ``values`` values of ``value_bits`` bits, ``banks`` replicas."""

    values: int
    value_bits: int
    depth: int
    banks: int = 1
    signed: bool = False

    @property
    def word_bits(self) -> int:
        return self.values * self.value_bits


def output_value_bits(stage, bits: int) -> tuple[int, bool]:
    """(bits, signed) of the values a stage writes: T-bit activations, or the output layer's S + b."""
    if stage.shift is not None:
        return bits, False
    from spikestream.rtl._components import lane_widths

    return lane_widths(stage, bits)[0], True


def buffer_layouts(plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int) -> list[BufferLayout]:
    """The L + 1 buffers: buffer i feeds stage i, the last one the output stream."""
    layouts = []
    for index, stage in enumerate(plan.stages):
        levels = parallelism.for_stage(stage)
        if isinstance(stage, ConvStage):
            channels, height, width = stage.input_shape
            if index == 0 and width % pixels_per_beat:
                raise ConfigurationError(f"pixels_per_beat={pixels_per_beat} must divide the input width {width}")
            layouts.append(BufferLayout(width, plan.bits, channels * height, levels.kernel_rows))
        else:
            if index == 0:
                values = pixels_per_beat
            else:
                producer = plan.stages[index - 1]
                values = (producer.output_shape[2] if isinstance(producer, ConvStage)
                          else parallelism.for_stage(producer).neurons)
            features = stage.input_shape[0]
            if features % values:
                raise ConfigurationError(f"{stage.name}: {values} values per input word must divide its {features} "
                                         f"inputs (pixels_per_beat={pixels_per_beat})")
            layouts.append(BufferLayout(values, plan.bits, features // values))
    last = plan.stages[-1]
    value_bits, is_signed = output_value_bits(last, plan.bits)
    if isinstance(last, ConvStage):
        channels, height, width = last.output_shape
        layouts.append(BufferLayout(width, value_bits, channels * height, signed=is_signed))
    else:
        neurons = parallelism.for_stage(last).neurons
        layouts.append(BufferLayout(neurons, value_bits, last.output_shape[0] // neurons, signed=is_signed))
    return layouts


class Accelerator(wiring.Component):
    """The whole inference engine of one quantized network (module docstring).

    Ports: ``pixels`` (input stream, ``pixels_per_beat`` uint8 pixels per beat, channel-major raster
    order), ``outputs`` (one output integer per beat, ``last`` on the image's final one, in the order of
    the flattened output) and ``layer_busy`` (one bit per layer, for measuring cycles).
    """

    def __init__(self, plan: HardwarePlan, parallelism: Parallelism, pixels_per_beat: int = DEFAULT_PIXELS_PER_BEAT):
        self.plan, self.parallelism, self.pixels_per_beat = plan, parallelism, pixels_per_beat
        for stage in plan.stages:
            parallelism.for_stage(stage)  # validates every layer before anything is built
            if isinstance(stage, ConvStage) and stage.shift is None:
                raise ir.UnsupportedError(f"the RTL generator needs a Requantize after convolution {stage.name!r}; "
                                          "only a Linear layer may output its accumulators")
        self.layouts = buffer_layouts(plan, parallelism, pixels_per_beat)
        super().__init__({
            "pixels": In(stream.Signature(8 * pixels_per_beat)),
            "outputs": Out(stream.Signature(OUTPUT_LAYOUT)),
            "layer_busy": Out(len(plan.stages)),
        })

    def elaborate(self, platform):
        from amaranth import Module

        m = Module()
        plan, layouts = self.plan, self.layouts
        buffers = []
        for index, layout in enumerate(layouts):
            buffer = PingPongBuffer(layout.word_bits, layout.depth, layout.banks)
            m.submodules[f"buffer_{index}"] = buffer
            buffers.append(buffer)
        m.submodules.controller = controller = LayerController(len(plan.stages))

        first = plan.stages[0]
        row_pixels = first.input_shape[2] if isinstance(first, ConvStage) else self.pixels_per_beat
        total = 1
        for size in plan.input_shape:
            total *= size
        m.submodules.input_stream = source = PixelStreamIn(total, row_pixels, self.pixels_per_beat, plan.bits,
                                                           buffers[0].addr_bits)
        wiring.connect(m, wiring.flipped(self.pixels), source.pixels)
        wiring.connect(m, source.write, buffers[0].write)
        m.d.comb += [buffers[0].commit.eq(source.commit), source.writable.eq(buffers[0].writable)]

        for index, stage in enumerate(plan.stages):
            levels = self.parallelism.for_stage(stage)
            source_buffer, target_buffer = buffers[index], buffers[index + 1]
            if isinstance(stage, ConvStage):
                unit = ConvolutionUnit(stage, levels, plan.bits, plan.weight_bits, source_buffer.addr_bits,
                                       target_buffer.addr_bits)
            else:
                unit = LinearUnit(stage, levels, plan.bits, plan.weight_bits, layouts[index].values,
                                  source_buffer.addr_bits, target_buffer.addr_bits)
            m.submodules[f"layer_{index}_{stage.name}"] = unit
            wiring.connect(m, unit.read, source_buffer.read)
            wiring.connect(m, unit.write, target_buffer.write)
            wiring.connect(m, getattr(controller.units, f"layer_{index}"), unit.control)
            m.d.comb += [
                controller.input_readable[index].eq(source_buffer.readable),
                controller.output_writable[index].eq(target_buffer.writable),
                source_buffer.release.eq(controller.release[index]),
                target_buffer.commit.eq(controller.commit[index]),
            ]
        m.d.comb += self.layer_busy.eq(controller.busy)

        last_layout, last_buffer = layouts[-1], buffers[-1]
        m.submodules.output_stream = sink = OutputStreamOut(last_layout.depth, last_layout.values,
                                                            last_layout.value_bits, last_layout.signed,
                                                            last_buffer.addr_bits)
        wiring.connect(m, sink.outputs, wiring.flipped(self.outputs))
        wiring.connect(m, sink.read, last_buffer.read)
        m.d.comb += [last_buffer.release.eq(sink.release), sink.readable.eq(last_buffer.readable)]
        return m


@dataclass(frozen=True)
class GeneratedDesign:
    """Verilog of one accelerator and what the testbench and the models need to know about it."""

    verilog: str
    top: str
    plan: HardwarePlan
    parallelism: Parallelism
    pixels_per_beat: int
    generate_s: float  # seconds Amaranth took to elaborate and write the Verilog
    component: Accelerator | None = field(default=None, repr=False, compare=False)  # for other netlists

    @property
    def output_count(self) -> int:
        count = 1
        for size in self.plan.output_shape:
            count *= size
        return count

    def write(self, path: str | os.PathLike) -> Path:
        from spikestream.report import atomic_write_text

        return atomic_write_text(path, self.verilog)


def generate(graph_or_plan: ir.Graph | HardwarePlan, parallelism: Parallelism | None = None,
             pixels_per_beat: int = DEFAULT_PIXELS_PER_BEAT, top: str = TOP_NAME) -> GeneratedDesign:
    """Build the accelerator of a quantized graph and emit its Verilog (module ``top``)."""
    plan = graph_or_plan if isinstance(graph_or_plan, HardwarePlan) else lower(graph_or_plan)
    parallelism = parallelism or Parallelism()
    if pixels_per_beat < 1:
        raise ConfigurationError(f"pixels_per_beat must be >= 1, not {pixels_per_beat}")
    start = time.perf_counter()
    accelerator = Accelerator(plan, parallelism, pixels_per_beat)
    status(f"rtl: generating Verilog for {len(plan.stages)} layers ({parallelism.text()})")
    text = emit_verilog(accelerator, top)
    return GeneratedDesign(text, top, plan, parallelism, pixels_per_beat, time.perf_counter() - start, accelerator)


def emit_verilog(component: wiring.Component, top: str) -> str:
    """Verilog of an Amaranth component, written by Amaranth's back end (``amaranth.back.verilog``)."""
    return verilog.convert(component, name=top, emit_src=False, strip_internal_attrs=True)
