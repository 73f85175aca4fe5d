"""Amaranth components of the radix SNN accelerator (``docs/rtl.md`` draws how they connect).

Every block is a ``wiring.Component`` with typed ports; ``generate`` assembles them from a
``HardwarePlan`` and Amaranth's back end writes the Verilog. Timing of a synaptic unit, per issued
(time step, input, kernel row) triple:

    cycle k    issue: addresses of the activation banks and the weight memory (synchronous reads)
    cycle k+1  spikes = bit t of the T-bit activations; each lane registers Σ w·s (spike-gated sum)
    cycle k+2  each lane accumulates: S ← (first of step t ? 2·S : S) + Σ w·s

so S is complete two cycles after the last issue; one more cycle adds the requantization offset c through
the same adder (S + c), and the requantizing neurons (shift and clip) and the pooling unit take one cycle.
"""

from __future__ import annotations

import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from spikestream.rtl._lowering import ConvStage, LinearStage, requantize_offset
from spikestream.rtl.reference import radix_encode_pixels

PIPELINE_DRAIN = 2  # cycles after the last issue until the accumulators hold the final S
READOUT_CYCLES = 2  # then: add the offset c, requantize (and pool, write a linear group)
OUTPUT_VALUE_BITS = 32  # width of a value on the output stream (sign-extended)


def signed_width(low: int, high: int) -> int:
    """Bits of a two's-complement signal holding every integer in [low, high]."""
    width = 1
    while not (-(1 << (width - 1)) <= low and high <= (1 << (width - 1)) - 1):
        width += 1
    return width


def address_bits(depth: int) -> int:
    return max(1, (max(depth, 1) - 1).bit_length())


def pack_fields(values, bits: int) -> int:
    """Little-endian concatenation of integers as ``bits``-bit two's-complement fields (an init word)."""
    word = 0
    for index, value in enumerate(values):
        word |= (int(value) & ((1 << bits) - 1)) << (index * bits)
    return word


# --- port signatures -------------------------------------------------------------------------------


def activation_read_signature(addr_bits: int, word_bits: int, banks: int) -> wiring.Signature:
    """A unit reading ``banks`` replicated activation banks, one word from each per cycle."""
    return wiring.Signature({
        "addr": Out(data.ArrayLayout(addr_bits, banks)),
        "data": In(data.ArrayLayout(word_bits, banks)),
    })


def activation_write_signature(addr_bits: int, word_bits: int) -> wiring.Signature:
    """A unit writing one word per cycle (to every bank of the next buffer)."""
    return wiring.Signature({"addr": Out(addr_bits), "data": Out(word_bits), "enable": Out(1)})


# Seen from the controller: it starts a unit; the unit reports busy, and done for one cycle at the end.
LAYER_CONTROL = wiring.Signature({"start": Out(1), "busy": In(1), "done": In(1)})


# --- leaf blocks -----------------------------------------------------------------------------------


class SpikeGatedAccumulator(wiring.Component):
    """One neuron lane: partial = Σ_i s_i·w_i (registered), then S ← (double ? 2·S : S) + partial.

    ``valid`` and ``double`` travel with the spikes and weights. ``add_offset`` (acting at once, not
    delayed) adds the requantization offset c through the same adder, so the neuron after it only shifts
    and clips; ``clear`` zeroes S after a readout.
    """

    def __init__(self, taps: int, weight_bits: int, width: int, offset_bits: int):
        self.taps, self.weight_bits, self.width = taps, weight_bits, width
        super().__init__({
            "spikes": In(taps),
            "weights": In(data.ArrayLayout(signed(weight_bits), taps)),
            "valid": In(1),
            "double": In(1),
            "offset": In(signed(offset_bits)),
            "add_offset": In(1),
            "clear": In(1),
            "value": Out(signed(width)),
        })

    def elaborate(self, platform):
        m = Module()
        partial = Signal(signed(self.weight_bits + self.taps.bit_length()))
        valid, double = Signal(), Signal()
        gated = [Mux(self.spikes[i], self.weights[i], 0) for i in range(self.taps)]
        m.d.sync += [partial.eq(sum(gated)), valid.eq(self.valid), double.eq(self.double)]
        base = Mux(double & ~self.add_offset, self.value << 1, self.value)
        addend = Mux(self.add_offset, self.offset, partial)
        with m.If(self.clear):
            m.d.sync += self.value.eq(0)
        with m.Elif(valid | self.add_offset):
            m.d.sync += self.value.eq(base + addend)  # S ← 2S + Σ w·s, or S ← S + c
        return m


class RequantizingNeuron(wiring.Component):
    """y = min(max((S + c) >> k, 0), 2^T − 1) from the lane's S + c: ReLU, round-half-up shift by k and clip
    of S + b (c = b + 2^(k−1) was added by the lane)."""

    def __init__(self, accumulator_bits: int, shift: int, bits: int):
        self.shift, self.bits = shift, bits
        super().__init__({
            "accumulator": In(signed(accumulator_bits)),
            "activation": Out(bits),
        })

    def elaborate(self, platform):
        m = Module()
        shifted = Signal(signed(len(self.accumulator)))
        m.d.comb += shifted.eq(self.accumulator >> self.shift)
        top = (1 << self.bits) - 1
        with m.If(shifted < 0):
            m.d.comb += self.activation.eq(0)
        with m.Elif(shifted > top):
            m.d.comb += self.activation.eq(top)
        with m.Else():
            m.d.comb += self.activation.eq(shifted[:self.bits])
        return m


class MaxPoolUnit(wiring.Component):
    """Max pooling of T-bit activations over a window of ``rows`` x ``columns``: rows arrive one after
    the other (``first`` marks the first), columns side by side. ``pooled`` is the pooled row including
    the activations of this cycle; the running maximum is registered when ``update`` is high."""

    def __init__(self, lanes: int, rows: int, columns: int, bits: int):
        self.lanes, self.rows, self.columns = lanes, rows, columns
        super().__init__({
            "activations": In(data.ArrayLayout(bits, lanes)),
            "first": In(1),
            "update": In(1),
            "pooled": Out(data.ArrayLayout(bits, lanes // columns)),
        })

    def elaborate(self, platform):
        m = Module()
        bits = len(self.activations[0])
        running = [Signal(bits, name=f"running_{j}") for j in range(self.lanes)] if self.rows > 1 else None
        current = []
        for j in range(self.lanes):
            value = self.activations[j]
            if running is not None:
                value = Mux(self.first | (value > running[j]), value, running[j])
                with m.If(self.update):
                    m.d.sync += running[j].eq(value)
            current.append(value)
        for out in range(self.lanes // self.columns):
            window = current[out * self.columns:(out + 1) * self.columns]
            best = window[0]
            for value in window[1:]:
                best = Mux(value > best, value, best)
            m.d.comb += self.pooled[out].eq(best)
        return m


class WeightMemory(wiring.Component):
    """A ROM initialised from the model (weights, or requantization offsets), synchronous read."""

    def __init__(self, words: list[int], word_bits: int):
        self.words, self.word_bits = list(words), word_bits
        super().__init__({"addr": In(address_bits(len(self.words))), "data": Out(word_bits)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.rom = rom = memory.Memory(shape=unsigned(self.word_bits), depth=max(len(self.words), 2),
                                               init=self.words)
        port = rom.read_port()
        m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m


class PingPongBuffer(wiring.Component):
    """Activation memory between two units, in two halves: the producer fills one half while the
    consumer reads the other, so that consecutive images overlap. ``banks`` replicas are written
    together and read at independent addresses (kernel-row parallelism of the consumer).

    The producer writes while ``writable`` and pulses ``commit`` when its half is complete; the consumer
    reads while ``readable`` and pulses ``release`` when done. Each half has a full flag.
    """

    def __init__(self, word_bits: int, depth: int, banks: int = 1):
        self.word_bits, self.depth, self.banks = word_bits, depth, banks
        self.addr_bits = address_bits(depth)
        super().__init__({
            "write": In(activation_write_signature(self.addr_bits, word_bits)),
            "read": In(activation_read_signature(self.addr_bits, word_bits, banks)),
            "commit": In(1),
            "release": In(1),
            "writable": Out(1),
            "readable": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        full = [Signal(name="full_0"), Signal(name="full_1")]
        write_half, read_half = Signal(), Signal()
        m.d.comb += [self.writable.eq(~Array(full)[write_half]), self.readable.eq(Array(full)[read_half])]
        for half in (0, 1):
            with m.If(self.commit & (write_half == half)):
                m.d.sync += full[half].eq(1)
            with m.Elif(self.release & (read_half == half)):
                m.d.sync += full[half].eq(0)
        with m.If(self.commit):
            m.d.sync += write_half.eq(~write_half)
        with m.If(self.release):
            m.d.sync += read_half.eq(~read_half)
        for bank in range(self.banks):
            store = memory.Memory(shape=unsigned(self.word_bits), depth=2 << self.addr_bits, init=[])
            m.submodules[f"bank_{bank}"] = store
            writer, reader = store.write_port(), store.read_port()
            m.d.comb += [
                writer.addr.eq(Cat(self.write.addr, write_half)),
                writer.data.eq(self.write.data),
                writer.en.eq(self.write.enable),
                reader.addr.eq(Cat(self.read.addr[bank], read_half)),
                self.read.data[bank].eq(reader.data),
            ]
        return m


# --- synaptic units --------------------------------------------------------------------------------


def accumulator_range(weight, bits: int) -> tuple[int, int]:
    """Bounds of S = W ⋆ q over inputs q in [0, 2^T − 1] (also of every partial radix sum), per layer."""
    flat = weight.reshape(weight.shape[0], -1)
    top = (1 << bits) - 1
    return int((flat.clip(max=0).sum(1) * top).min()), int((flat.clip(min=0).sum(1) * top).max())


def lane_widths(stage, bits: int) -> tuple[int, int]:
    """(accumulator bits, offset bits) of a layer's lanes: the accumulator holds every partial sum and S + c."""
    low, high = accumulator_range(stage.weight, bits)
    offsets = requantize_offset(stage.bias, stage.shift)
    smallest, largest = min(int(offsets.min()), 0), max(int(offsets.max()), 0)
    return signed_width(low + smallest, high + largest), signed_width(smallest, largest)


def conv_weight_words(stage: ConvStage, levels, weight_bits: int, unit: int) -> list[int]:
    """Weight ROM of one convolution unit: address (channel group, input channel, kernel-row group), word =
    [channel][kernel row][column] of ``weight_bits`` fields (rows beyond k_h are zero)."""
    c_in = stage.input_shape[0]
    k_h, k_w = stage.kernel
    per_group = levels.channels * levels.units
    row_groups = -(-k_h // levels.kernel_rows)
    words = []
    for group in range(stage.output_shape[0] // per_group):
        for channel_in in range(c_in):
            for row_group in range(row_groups):
                fields = []
                for channel in range(levels.channels):
                    out_channel = (group * levels.units + unit) * levels.channels + channel
                    for bank in range(levels.kernel_rows):
                        row = row_group * levels.kernel_rows + bank
                        for column in range(k_w):
                            fields.append(stage.weight[out_channel, channel_in, row, column] if row < k_h else 0)
                words.append(pack_fields(fields, weight_bits))
    return words


def linear_weight_words(stage: LinearStage, neurons: int, weight_bits: int) -> list[int]:
    """Weight ROM of a linear unit: address (neuron group, input), word = the group's weights of that input."""
    weight = stage.weight
    return [pack_fields(weight[g * neurons:(g + 1) * neurons, i], weight_bits)
            for g in range(weight.shape[0] // neurons) for i in range(weight.shape[1])]


def offset_words(stage, per_group: int, bits: int) -> list[int]:
    """Requantization offsets c (or biases, without requantization) per group of ``per_group`` channels."""
    offsets = requantize_offset(stage.bias, stage.shift)
    return [pack_fields(offsets[g * per_group:(g + 1) * per_group], bits)
            for g in range(len(offsets) // per_group)]


class ConvolutionUnit(wiring.Component):
    """A convolution layer with requantization and max pooling (a ``ConvStage``).

    An array of ``units x channels x pixels`` spike-gated accumulators computes ``pixels`` outputs of one
    row for ``units x channels`` output channels. For each row it issues T x C_in x ⌈k_h / kernel_rows⌉
    cycles (time step outer, so that S doubles at each new step), each reading ``kernel_rows`` input rows
    from replicated banks and the packed weights of every channel; then the requantizing neurons and the
    pooling unit fold the row into the pooled row, which is written to the next buffer one channel per
    cycle. Loop order: channel group, pooled row, row segment, row in the pooling window.
    """

    def __init__(self, stage: ConvStage, levels, bits: int, weight_bits: int, in_addr_bits: int, out_addr_bits: int):
        self.stage, self.levels, self.bits, self.weight_bits = stage, levels, bits, weight_bits
        self.in_word_bits = stage.input_shape[2] * bits
        self.out_word_bits = stage.output_shape[2] * bits
        self.accumulator_bits, self.offset_bits = lane_widths(stage, bits)
        super().__init__({
            "control": In(LAYER_CONTROL),
            "read": Out(activation_read_signature(in_addr_bits, self.in_word_bits, levels.kernel_rows)),
            "write": Out(activation_write_signature(out_addr_bits, self.out_word_bits)),
        })

    # geometry ---------------------------------------------------------------------------------------
    @property
    def groups(self) -> int:
        return self.stage.output_shape[0] // (self.levels.channels * self.levels.units)

    @property
    def row_groups(self) -> int:
        return -(-self.stage.kernel[0] // self.levels.kernel_rows)

    @property
    def segments(self) -> int:
        return -(-self.stage.used_conv_shape[1] // self.levels.pixels)

    def weight_words(self, unit: int) -> list[int]:
        return conv_weight_words(self.stage, self.levels, self.weight_bits, unit)

    def offset_words(self) -> list[int]:
        per_group = self.levels.channels * self.levels.units
        return offset_words(self.stage, per_group, self.offset_bits)

    def elaborate(self, platform):
        m = Module()
        stage, levels, bits = self.stage, self.levels, self.bits
        c_in, h_in, w_in = stage.input_shape
        _, h_out, w_out = stage.output_shape
        k_h, k_w = stage.kernel
        (stride_h, stride_w), (pad_h, pad_w) = stage.stride, stage.padding
        pool_h, pool_w = stage.pool
        pixels, banks, channels, units = levels.pixels, levels.kernel_rows, levels.channels, levels.units
        per_group, row_groups, segments, groups = channels * units, self.row_groups, self.segments, self.groups
        taps = banks * k_w

        # memories initialised from the model
        weight_roms = []
        for unit in range(units):
            rom = WeightMemory(self.weight_words(unit), channels * taps * self.weight_bits)
            m.submodules[f"weights_{unit}"] = rom
            weight_roms.append(rom)
        m.submodules.offsets = offset_rom = WeightMemory(self.offset_words(), per_group * self.offset_bits)

        # loop counters
        group = Signal(range(max(groups, 2)))
        pooled_row = Signal(range(max(h_out, 2)))
        segment = Signal(range(max(segments, 2)))
        window_row = Signal(range(max(pool_h, 2)))
        step = Signal(range(max(bits, 2)))
        channel_in = Signal(range(max(c_in, 2)))
        row_group = Signal(range(max(row_groups, 2)))
        writing = Signal(range(max(per_group, 2)))
        drain = Signal(range(PIPELINE_DRAIN + 1))
        # address registers (incremental: no multipliers)
        input_base = Signal(range(c_in * h_in + 1))  # channel_in · H_in
        row_base = Signal(signed(max(h_in, h_out * pool_h * stride_h).bit_length() + 2))  # y_out·s_h − p_h
        pooled_row_base = Signal.like(row_base)
        weight_base = Signal(range(max(groups * c_in * row_groups, 2)))  # group · C_in · RG
        weight_addr = Signal.like(weight_base)
        output_base = Signal(range(max(stage.output_shape[0] * h_out, 2)))  # group · per_group · H_p + pooled row
        output_addr = Signal.like(output_base)

        issuing, offsetting, requantizing = Signal(), Signal(), Signal()
        m.d.comb += [
            offset_rom.addr.eq(group),
            self.control.busy.eq(1),
        ]
        for rom in weight_roms:
            m.d.comb += rom.addr.eq(weight_addr)

        # issue: one input row per bank, all at input channel `channel_in`
        row_valid = Signal(banks)
        for bank in range(banks):
            kernel_row = row_group * banks + bank
            row = row_base + kernel_row
            valid = (kernel_row < k_h) & (row >= 0) & (row < h_in)
            m.d.comb += [row_valid[bank].eq(valid),
                         self.read.addr[bank].eq(Mux(valid, input_base + row[:len(input_base)], 0))]

        # stage B: spikes from the bank words, delayed tags
        valid_b, first_b = Signal(), Signal()
        bit_b = Signal.like(step)  # bit T−1−t of each activation is the spike of step t (MSB first)
        segment_b = Signal.like(segment)
        row_valid_b = Signal(banks)
        m.d.sync += [valid_b.eq(issuing), first_b.eq((channel_in == 0) & (row_group == 0)), bit_b.eq(bits - 1 - step),
                     segment_b.eq(segment), row_valid_b.eq(row_valid)]
        planes = []  # planes[bank][column]: bit (T−1−t) of the input activation
        for bank in range(banks):
            word = self.read.data[bank]
            planes.append([word[column * bits:(column + 1) * bits].bit_select(bit_b, 1) & row_valid_b[bank]
                           for column in range(w_in)])

        def spike(bank: int, pixel: int, column_tap: int):
            candidates = []
            for seg in range(segments):
                column = (seg * pixels + pixel) * stride_w - pad_w + column_tap
                candidates.append(planes[bank][column] if 0 <= column < w_in else Const(0, 1))
            return candidates[0] if segments == 1 else Array(candidates)[segment_b]

        spikes = [Cat(*(spike(bank, pixel, tap) for bank in range(banks) for tap in range(k_w)))
                  for pixel in range(pixels)]

        # the accumulator array, requantizing neurons and pooling units
        collector = [[Signal(bits, name=f"pooled_{channel}_{column}") for column in range(w_out)]
                     for channel in range(per_group)]
        last_window_row = window_row == pool_h - 1
        for unit in range(units):
            weight_word = weight_roms[unit].data
            for channel in range(channels):
                lane_channel = unit * channels + channel
                offset = offset_rom.data[lane_channel * self.offset_bits:(lane_channel + 1) * self.offset_bits]
                weights = weight_word[channel * taps * self.weight_bits:(channel + 1) * taps * self.weight_bits]
                m.submodules[f"pool_{lane_channel}"] = pool = MaxPoolUnit(pixels, pool_h, pool_w, bits)
                m.d.comb += [pool.first.eq(window_row == 0), pool.update.eq(requantizing)]
                for pixel in range(pixels):
                    lane = SpikeGatedAccumulator(taps, self.weight_bits, self.accumulator_bits, self.offset_bits)
                    neuron = RequantizingNeuron(self.accumulator_bits, stage.shift, bits)
                    m.submodules[f"lane_{lane_channel}_{pixel}"] = lane
                    m.submodules[f"neuron_{lane_channel}_{pixel}"] = neuron
                    m.d.comb += [
                        lane.spikes.eq(spikes[pixel]),
                        lane.weights.as_value().eq(weights),
                        lane.valid.eq(valid_b),
                        lane.double.eq(first_b),
                        lane.offset.eq(offset.as_signed()),
                        lane.add_offset.eq(offsetting),
                        lane.clear.eq(requantizing),
                        neuron.accumulator.eq(lane.value),
                        pool.activations[pixel].eq(neuron.activation),
                    ]
                # fold the pooled values of this segment into the row collector
                per_segment = pixels // pool_w
                for column in range(w_out):
                    seg, position = divmod(column, per_segment)
                    with m.If(requantizing & last_window_row & (segment == seg)):
                        m.d.sync += collector[lane_channel][column].eq(pool.pooled[position])

        m.d.comb += [
            self.write.addr.eq(output_addr),
            self.write.data.eq(Array(Cat(*row) for row in collector)[writing]),
        ]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.control.busy.eq(0)
                with m.If(self.control.start):
                    m.d.sync += [group.eq(0), pooled_row.eq(0), segment.eq(0), window_row.eq(0), step.eq(0),
                                 channel_in.eq(0), row_group.eq(0), input_base.eq(0), row_base.eq(-pad_h),
                                 pooled_row_base.eq(-pad_h), weight_base.eq(0), weight_addr.eq(0),
                                 output_base.eq(0)]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issuing.eq(1)
                m.d.sync += weight_addr.eq(weight_addr + 1)
                with m.If(row_group == row_groups - 1):
                    m.d.sync += row_group.eq(0)
                    with m.If(channel_in == c_in - 1):
                        m.d.sync += [channel_in.eq(0), input_base.eq(0), weight_addr.eq(weight_base)]
                        with m.If(step == bits - 1):
                            m.d.sync += [step.eq(0), drain.eq(0)]
                            m.next = "DRAIN"
                        with m.Else():
                            m.d.sync += step.eq(step + 1)
                    with m.Else():
                        m.d.sync += [channel_in.eq(channel_in + 1), input_base.eq(input_base + h_in)]
                with m.Else():
                    m.d.sync += row_group.eq(row_group + 1)
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == PIPELINE_DRAIN - 1):
                    m.next = "OFFSET"
            with m.State("OFFSET"):
                m.d.comb += offsetting.eq(1)
                m.next = "REQUANTIZE"
            with m.State("REQUANTIZE"):
                m.d.comb += requantizing.eq(1)
                with m.If(~last_window_row):
                    m.d.sync += [window_row.eq(window_row + 1), row_base.eq(row_base + stride_h)]
                    m.next = "ISSUE"
                with m.Else():
                    m.d.sync += [window_row.eq(0), row_base.eq(pooled_row_base)]
                    with m.If(segment != segments - 1):
                        m.d.sync += segment.eq(segment + 1)
                        m.next = "ISSUE"
                    with m.Else():
                        m.d.sync += [segment.eq(0), writing.eq(0), output_addr.eq(output_base)]
                        m.next = "WRITE"
            with m.State("WRITE"):
                m.d.comb += self.write.enable.eq(1)
                m.d.sync += [writing.eq(writing + 1), output_addr.eq(output_addr + h_out)]
                with m.If(writing == per_group - 1):
                    m.d.sync += writing.eq(0)
                    with m.If(pooled_row != h_out - 1):
                        step_rows = pool_h * stride_h
                        m.d.sync += [pooled_row.eq(pooled_row + 1), output_base.eq(output_base + 1),
                                     pooled_row_base.eq(pooled_row_base + step_rows),
                                     row_base.eq(pooled_row_base + step_rows)]
                        m.next = "ISSUE"
                    with m.Elif(group != groups - 1):
                        m.d.sync += [group.eq(group + 1), pooled_row.eq(0), row_base.eq(-pad_h),
                                     pooled_row_base.eq(-pad_h), weight_base.eq(weight_base + c_in * row_groups),
                                     weight_addr.eq(weight_base + c_in * row_groups),
                                     output_base.eq(output_base + 1 + (per_group - 1) * h_out)]
                        m.next = "ISSUE"
                    with m.Else():
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.control.done.eq(1)
                m.next = "IDLE"
        return m


class LinearUnit(wiring.Component):
    """A linear layer (``LinearStage``): ``neurons`` spike-gated accumulators share one input spike per
    cycle; per group of neurons it issues T x in_features cycles (time step outer), then requantizes
    (or adds the bias, for the output layer) and writes the group's values as one word."""

    def __init__(self, stage: LinearStage, levels, bits: int, weight_bits: int, values_per_word: int,
                 in_addr_bits: int, out_addr_bits: int):
        self.stage, self.levels, self.bits, self.weight_bits = stage, levels, bits, weight_bits
        self.values_per_word = values_per_word
        self.accumulator_bits, self.offset_bits = lane_widths(stage, bits)
        self.value_bits = self.accumulator_bits if stage.shift is None else bits
        super().__init__({
            "control": In(LAYER_CONTROL),
            "read": Out(activation_read_signature(in_addr_bits, values_per_word * bits, 1)),
            "write": Out(activation_write_signature(out_addr_bits, levels.neurons * self.value_bits)),
        })

    @property
    def groups(self) -> int:
        return self.stage.output_shape[0] // self.levels.neurons

    def weight_words(self) -> list[int]:
        return linear_weight_words(self.stage, self.levels.neurons, self.weight_bits)

    def offset_words(self) -> list[int]:
        return offset_words(self.stage, self.levels.neurons, self.offset_bits)

    def elaborate(self, platform):
        m = Module()
        stage, bits, neurons = self.stage, self.bits, self.levels.neurons
        features, groups, per_word = stage.input_shape[0], self.groups, self.values_per_word
        m.submodules.weights = weight_rom = WeightMemory(self.weight_words(), neurons * self.weight_bits)
        m.submodules.offsets = offset_rom = WeightMemory(self.offset_words(), neurons * self.offset_bits)

        group = Signal(range(max(groups, 2)))
        step = Signal(range(max(bits, 2)))
        feature = Signal(range(max(features, 2)))
        word = Signal(range(max(features // per_word, 2)))
        value = Signal(range(max(per_word, 2)))
        drain = Signal(range(PIPELINE_DRAIN + 1))
        weight_base = Signal(range(max(groups * features, 2)))
        weight_addr = Signal.like(weight_base)
        issuing, offsetting, reading_out = Signal(), Signal(), Signal()
        m.d.comb += [weight_rom.addr.eq(weight_addr), offset_rom.addr.eq(group), self.read.addr[0].eq(word),
                     self.control.busy.eq(1)]

        valid_b, first_b = Signal(), Signal()
        bit_b, value_b = Signal.like(step), Signal.like(value)
        m.d.sync += [valid_b.eq(issuing), first_b.eq(feature == 0), bit_b.eq(bits - 1 - step), value_b.eq(value)]
        activation = self.read.data[0].word_select(value_b, bits)
        spike = activation.bit_select(bit_b, 1)

        outputs = []
        for neuron in range(neurons):
            lane = SpikeGatedAccumulator(1, self.weight_bits, self.accumulator_bits, self.offset_bits)
            m.submodules[f"lane_{neuron}"] = lane
            offset = offset_rom.data[neuron * self.offset_bits:(neuron + 1) * self.offset_bits].as_signed()
            m.d.comb += [
                lane.spikes.eq(spike),
                lane.weights.as_value().eq(weight_rom.data[neuron * self.weight_bits:(neuron + 1) * self.weight_bits]),
                lane.valid.eq(valid_b),
                lane.double.eq(first_b),
                lane.offset.eq(offset),
                lane.add_offset.eq(offsetting),
                lane.clear.eq(reading_out),
            ]
            if stage.shift is None:
                result = lane.value  # S + b: the offset of an output layer is its bias
            else:
                neuron_unit = RequantizingNeuron(self.accumulator_bits, stage.shift, bits)
                m.submodules[f"neuron_{neuron}"] = neuron_unit
                m.d.comb += neuron_unit.accumulator.eq(lane.value)
                result = neuron_unit.activation
            outputs.append(result)
        m.d.comb += [self.write.addr.eq(group), self.write.data.eq(Cat(*outputs)),
                     self.write.enable.eq(reading_out)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.control.busy.eq(0)
                with m.If(self.control.start):
                    m.d.sync += [group.eq(0), step.eq(0), feature.eq(0), word.eq(0), value.eq(0),
                                 weight_base.eq(0), weight_addr.eq(0)]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += issuing.eq(1)
                m.d.sync += weight_addr.eq(weight_addr + 1)
                with m.If(value == per_word - 1):
                    m.d.sync += [value.eq(0), word.eq(word + 1)]
                with m.Else():
                    m.d.sync += value.eq(value + 1)
                with m.If(feature == features - 1):
                    m.d.sync += [feature.eq(0), word.eq(0), value.eq(0), weight_addr.eq(weight_base)]
                    with m.If(step == bits - 1):
                        m.d.sync += [step.eq(0), drain.eq(0)]
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
                with m.Else():
                    m.d.sync += feature.eq(feature + 1)
            with m.State("DRAIN"):
                m.d.sync += drain.eq(drain + 1)
                with m.If(drain == PIPELINE_DRAIN - 1):
                    m.next = "OFFSET"
            with m.State("OFFSET"):
                m.d.comb += offsetting.eq(1)
                m.next = "OUTPUT"
            with m.State("OUTPUT"):
                m.d.comb += reading_out.eq(1)
                with m.If(group == groups - 1):
                    m.next = "DONE"
                with m.Else():
                    m.d.sync += [group.eq(group + 1), weight_base.eq(weight_base + features),
                                 weight_addr.eq(weight_base + features)]
                    m.next = "ISSUE"
            with m.State("DONE"):
                m.d.comb += self.control.done.eq(1)
                m.next = "IDLE"
        return m


# --- streaming I/O and control -----------------------------------------------------------------------


class PixelStreamIn(wiring.Component):
    """Streaming input: ``pixels_per_beat`` uint8 pixels per beat (valid/ready), channel-major raster order.

    A ROM per lane radix-encodes each pixel, q = ⌊p·(2^T − 1)/255 + ½⌋; the encoded values are packed into
    the first buffer's words (an input row for a convolution, ``pixels_per_beat`` values for a linear layer),
    and the buffer half is committed after the last pixel of the image."""

    def __init__(self, total_pixels: int, row_pixels: int, pixels_per_beat: int, bits: int, addr_bits: int):
        self.total_pixels, self.row_pixels, self.pixels_per_beat, self.bits = (total_pixels, row_pixels,
                                                                               pixels_per_beat, bits)
        super().__init__({
            "pixels": In(stream.Signature(8 * pixels_per_beat)),
            "write": Out(activation_write_signature(addr_bits, row_pixels * bits)),
            "commit": Out(1),
            "writable": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        lanes, bits = self.pixels_per_beat, self.bits
        table = radix_encode_pixels(np.arange(256, dtype=np.uint8), bits)
        encoded = []
        for lane in range(lanes):
            encoder = Array(Const(int(q), bits) for q in table)
            encoded.append(encoder[self.pixels.payload[lane * 8:(lane + 1) * 8]])
        beats_per_row = self.row_pixels // lanes
        rows = self.total_pixels // self.row_pixels
        beat = Signal(range(max(beats_per_row, 2)))
        row = Signal(range(max(rows, 2)))
        kept = [Signal(lanes * bits, name=f"beat_{b}") for b in range(beats_per_row - 1)]
        accepted = self.pixels.valid & self.pixels.ready
        m.d.comb += [self.write.addr.eq(row), self.write.data.eq(Cat(*kept, *encoded))]
        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += [self.pixels.ready.eq(self.writable),
                             self.write.enable.eq(accepted & (beat == beats_per_row - 1))]
                with m.If(accepted):
                    for index, register in enumerate(kept):
                        with m.If(beat == index):
                            m.d.sync += register.eq(Cat(*encoded))
                    with m.If(beat == beats_per_row - 1):
                        m.d.sync += beat.eq(0)
                        with m.If(row == rows - 1):
                            m.d.sync += row.eq(0)
                            m.next = "COMMIT"
                        with m.Else():
                            m.d.sync += row.eq(row + 1)
                    with m.Else():
                        m.d.sync += beat.eq(beat + 1)
            with m.State("COMMIT"):
                m.d.comb += self.commit.eq(1)
                m.next = "LOAD"
        return m


OUTPUT_LAYOUT = data.StructLayout({"value": signed(OUTPUT_VALUE_BITS), "last": unsigned(1)})


class OutputStreamOut(wiring.Component):
    """Streaming output: the last buffer's values one per beat (valid/ready), ``last`` on the final one."""

    def __init__(self, words: int, values_per_word: int, value_bits: int, is_signed: bool, addr_bits: int):
        self.words, self.values_per_word = words, values_per_word
        self.value_bits, self.is_signed = value_bits, is_signed
        super().__init__({
            "outputs": Out(stream.Signature(OUTPUT_LAYOUT)),
            "read": Out(activation_read_signature(addr_bits, values_per_word * value_bits, 1)),
            "release": Out(1),
            "readable": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        word = Signal(range(max(self.words, 2)))
        value = Signal(range(max(self.values_per_word, 2)))
        field = self.read.data[0].word_select(value, self.value_bits)
        m.d.comb += [self.read.addr[0].eq(word),
                     self.outputs.p.value.eq(field.as_signed() if self.is_signed else field),
                     self.outputs.p.last.eq((word == self.words - 1) & (value == self.values_per_word - 1))]
        with m.FSM():
            with m.State("WAIT"), m.If(self.readable):
                m.next = "FETCH"
            with m.State("FETCH"):  # the word's read takes one cycle
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.outputs.valid.eq(1)
                with m.If(self.outputs.ready):
                    with m.If(value == self.values_per_word - 1):
                        m.d.sync += value.eq(0)
                        with m.If(word == self.words - 1):
                            m.d.sync += word.eq(0)
                            m.next = "RELEASE"
                        with m.Else():
                            m.d.sync += word.eq(word + 1)
                            m.next = "FETCH"
                    with m.Else():
                        m.d.sync += value.eq(value + 1)
            with m.State("RELEASE"):
                m.d.comb += self.release.eq(1)
                m.next = "WAIT"
        return m


class LayerController(wiring.Component):
    """Sequences the layers: starts layer i when its input buffer holds an image and its output buffer has
    a free half, and on its ``done`` releases the input half and commits the output half. Layers run one
    after the other for one image (layer-synchronous); with two images in flight they overlap."""

    def __init__(self, layers: int):
        self.layers = layers
        super().__init__({
            "units": Out(wiring.Signature({f"layer_{i}": Out(LAYER_CONTROL) for i in range(layers)})),
            "input_readable": In(layers),
            "output_writable": In(layers),
            "release": Out(layers),
            "commit": Out(layers),
            "busy": Out(layers),
        })

    def elaborate(self, platform):
        m = Module()
        for index in range(self.layers):
            control = getattr(self.units, f"layer_{index}")
            ready = self.input_readable[index] & self.output_writable[index]
            m.d.sync += control.start.eq(ready & ~control.busy & ~control.start)
            m.d.comb += [self.release[index].eq(control.done), self.commit[index].eq(control.done),
                         self.busy[index].eq(control.busy)]
        return m
