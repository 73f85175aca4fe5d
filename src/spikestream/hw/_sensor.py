"""In-sensor first layer (after Datta et al., ICASSP 2023): bandwidth and energy, conventional vs in-pixel.

Conventional pipeline: every pixel is read out and converted with a ``b``-bit ADC, the raw frame
crosses the link (H·W·C_in·b bits plus the frame header), and the processor computes layer 1.

In-sensor pipeline: layer 1 is computed inside the pixel array. It must be a convolution with
kernel = stride (no overlap: each pixel feeds exactly one output position), no padding, and it emits
binary spikes over T steps. Only those spikes cross the link, as one of:

- ``bitmap``: one bit per output neuron per step, (H/s)·(W/s)·C_out·T bits + header;
- ``aer``: address events, a count field then for every spike its neuron address (and step);
- ``auto``: whichever of the two is shorter for the frame, plus one flag bit.

The dense bitmap gives the closed form (without header) of the bandwidth reduction

    BR = (H·W·C_in·b) / ((H/s)·(W/s)·C_out·T) = s²·C_in·b / (C_out·T),

so for b = 12 and C_in = 1: s = 4, C_out = 16, T = 1 gives 12x; s = 8, C_out = 8, T = 1 gives 96x.
``encode_frame`` builds the actual bit stream of a frame (tests check its length against these
expressions and decode it back).

Energy per frame: sensor (readout + conversions, or in-pixel MACs + 1-bit spike decisions) + link bits
× energy per bit + layer 1 on the processor (conventional only) + the rest of the network, which is
the same in both pipelines (the memory-inclusive int8 SNN energy of layers 2.. from the Trace).
"""

from __future__ import annotations

import numpy as np

from spikestream.config import SensorModel, bits_for, load_energy_table, load_sensor
from spikestream.hw._energy import PJ, estimate_energy, layer_energy
from spikestream.hw._geometry import LayerGeometry, trace_geometry
from spikestream.hw._targets import HardwareResult, Target, TargetError, register_target

LINK_FORMATS = ("bitmap", "aer", "auto")


def conventional_bits(height: int, width: int, input_channels: int, adc_bits: int, header_bits: int = 0) -> int:
    return height * width * input_channels * adc_bits + header_bits


def spike_map_shape(height: int, width: int, stride: int, channels: int, steps: int) -> tuple[int, int, int, int]:
    """(T, C_out, H/s, W/s) of the spikes an in-pixel layer with kernel = stride = s sends."""
    return steps, channels, height // stride, width // stride


def aer_word_bits(neurons: int, steps: int) -> int:
    """Bits of one address event: the neuron address, and the step when T > 1."""
    return bits_for(neurons) + (bits_for(steps) if steps > 1 else 0)


def format_bits(spikes: int | np.ndarray, neurons: int, steps: int, link_format: str, header_bits: int = 0
                ) -> np.ndarray:
    """Transmitted bits of frames with ``spikes`` spikes each, ``neurons`` output neurons, T steps."""
    spikes = np.asarray(spikes, dtype=np.float64)
    bitmap = header_bits + neurons * steps + 0 * spikes
    aer = header_bits + bits_for(neurons * steps + 1) + spikes * aer_word_bits(neurons, steps)
    if link_format == "bitmap":
        return bitmap
    if link_format == "aer":
        return aer
    if link_format == "auto":
        return 1 + np.minimum(bitmap, aer)
    raise TargetError(f"unknown link format {link_format!r}; choose one of: {', '.join(LINK_FORMATS)}")


def closed_form_bandwidth_reduction(stride: int, channels: int, steps: int, adc_bits: int,
                                    input_channels: int = 1) -> float:
    """s²·C_in·b / (C_out·T): conventional raw bits over dense-bitmap spike bits (headers left out)."""
    return stride * stride * input_channels * adc_bits / (channels * steps)


def _bits_of(value: int, width: int) -> np.ndarray:
    return ((value >> np.arange(width - 1, -1, -1)) & 1).astype(np.uint8)


def encode_frame(spikes: np.ndarray, link_format: str = "bitmap", header_bits: int = 0) -> np.ndarray:
    """The bit stream (uint8 0/1 array) that carries one frame's spikes (T, C, h, w) over the link."""
    spikes = np.asarray(spikes).astype(bool)
    if spikes.ndim != 4:
        raise TargetError(f"spikes must be (T, C, h, w), not shape {spikes.shape}")
    steps, neurons = spikes.shape[0], int(np.prod(spikes.shape[1:]))
    header = np.zeros(header_bits, dtype=np.uint8)
    if link_format == "auto":
        bitmap, aer = encode_frame(spikes, "bitmap", header_bits), encode_frame(spikes, "aer", header_bits)
        return np.concatenate([[0], bitmap]) if len(bitmap) <= len(aer) else np.concatenate([[1], aer])
    if link_format == "bitmap":
        return np.concatenate([header, spikes.reshape(-1).astype(np.uint8)])
    if link_format == "aer":
        flat = np.flatnonzero(spikes.reshape(steps, -1).reshape(-1))  # index = t·N + neuron
        width = aer_word_bits(neurons, steps)
        address_bits, step_bits = bits_for(neurons), width - bits_for(neurons)
        words = [np.concatenate([_bits_of(int(i % neurons), address_bits), _bits_of(int(i // neurons), step_bits)])
                 for i in flat]
        count = _bits_of(len(flat), bits_for(neurons * steps + 1))
        return np.concatenate([header, count, *words]) if words else np.concatenate([header, count])
    raise TargetError(f"unknown link format {link_format!r}; choose one of: {', '.join(LINK_FORMATS)}")


def decode_frame(bits: np.ndarray, shape: tuple[int, int, int, int], link_format: str = "bitmap",
                 header_bits: int = 0) -> np.ndarray:
    """Inverse of ``encode_frame``: the (T, C, h, w) spikes from the bit stream."""
    steps, neurons = shape[0], int(np.prod(shape[1:]))
    bits = np.asarray(bits, dtype=np.uint8)
    if link_format == "auto":
        return decode_frame(bits[1:], shape, "aer" if bits[0] else "bitmap", header_bits)
    body = bits[header_bits:]
    if link_format == "bitmap":
        return body[:steps * neurons].astype(bool).reshape(shape)
    count_bits = bits_for(neurons * steps + 1)
    weights = lambda b: int(b.astype(np.int64) @ (1 << np.arange(len(b) - 1, -1, -1)))  # noqa: E731
    count = weights(body[:count_bits])
    width, address_bits = aer_word_bits(neurons, steps), bits_for(neurons)
    spikes = np.zeros(steps * neurons, dtype=bool)
    for k in range(count):
        word = body[count_bits + k * width: count_bits + (k + 1) * width]
        address = weights(word[:address_bits])
        step = weights(word[address_bits:]) if width > address_bits else 0
        spikes[step * neurons + address] = True
    return spikes.reshape(shape)


def bandwidth_sweep(height: int, width: int, strides, channels, steps, adc_bits, density: float = 0.1,
                    input_channels: int = 1, link_format: str = "bitmap", header_bits: int = 0,
                    seed: int = 0) -> list[dict]:
    """Bandwidth reduction over a grid of (stride, C_out, T, ADC bits), from the lengths of actually
    encoded frames (random spikes at ``density``) beside the closed form."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in strides:
        for c in channels:
            for t in steps:
                shape = spike_map_shape(height, width, s, c, t)
                spikes = rng.random(shape) < density
                sent = len(encode_frame(spikes, link_format, header_bits))
                for b in adc_bits:
                    raw = conventional_bits(height, width, input_channels, b, header_bits)
                    rows.append({"stride": s, "channels": c, "steps": t, "adc_bits": b, "raw_bits": raw,
                                 "sent_bits": sent, "bandwidth_reduction": raw / sent,
                                 "closed_form": closed_form_bandwidth_reduction(s, c, t, b, input_channels)})
    return rows


def check_in_sensor_layer(g: LayerGeometry) -> None:
    """Raise unless ``g`` can be computed in the pixel array (conv, kernel = stride, no padding)."""
    problems = []
    if g.kind != "Conv2d":
        problems.append(f"it is a {g.kind}, not a Conv2d")
    else:
        if g.kernel != g.stride:
            problems.append(f"kernel {g.kernel[0]}x{g.kernel[1]} != stride {g.stride[0]}x{g.stride[1]} "
                            "(windows overlap)")
        if any(g.padding):
            problems.append(f"padding {g.padding} (a pixel array has no border)")
        if g.groups != 1:
            problems.append(f"groups={g.groups}")
    if problems:
        raise TargetError(f"the sensor target computes the first layer {g.name!r} inside the pixel array, which "
                          f"needs a convolution with kernel = stride and no padding: {'; '.join(problems)}")


@register_target("sensor")
class SensorTarget(Target):
    """Conventional sensor + link vs an in-pixel first layer; ``link_format`` bitmap, aer or auto."""

    def __init__(self, sensor: str = "cis-45nm", adc_bits: int | None = None, link_format: str = "auto",
                 preset: str = "sensor"):
        self.sensor: SensorModel = load_sensor(sensor, preset)
        self.adc_bits = int(adc_bits if adc_bits is not None else self.sensor.adc_bits)
        if link_format not in LINK_FORMATS:
            raise TargetError(f"unknown link format {link_format!r}; choose one of: {', '.join(LINK_FORMATS)}")
        self.link_format = link_format

    def simulate(self, trace, schedule: str | None = None, **schedule_options) -> HardwareResult:
        sensor = self.sensor
        geometry = trace_geometry(trace)
        first = geometry[0]
        check_in_sensor_layer(first)
        steps = int(trace.metadata.get("steps") or 1)
        c_in, height, width = first.input_shape
        neurons = first.neurons
        if len(geometry) > 1:
            nxt = geometry[1]
            if nxt.graded_input:
                raise TargetError(f"the in-pixel layer must emit binary spikes, but layer {nxt.name!r} receives "
                                  f"graded events; put a spiking neuron (IF/LIF) after {first.name!r}")
            # spikes that leave the sensor = events at the next layer's input (scaled if a pooling sits between)
            spikes = trace.events[:, 1].astype(np.float64) * neurons / max(1, nxt.input_elements)
        else:
            spikes = np.full(trace.frames, neurons * steps * 0.5)  # no consumer recorded: assume half
        header = sensor.frame_header_bits
        raw_bits = conventional_bits(height, width, c_in, self.adc_bits, header)
        sent_bits = format_bits(spikes, neurons, steps, self.link_format, header)  # (F,)

        table = load_energy_table()
        int8 = table.precision("int8")
        pixels = height * width * c_in
        # layer 1 on the processor (conventional): its dense MACs, and its neurons' update every step
        first_on_processor = (trace.dense_macs[0] * table.mac_pj(int8)
                              + neurons * steps * table.accumulate_pj(int8)) * PJ
        rest = 0.0
        frames = max(1, trace.frames)
        on_chip = sum(g.weights for g in geometry) * int8.weight_bits <= table.memory.on_chip_weight_bytes * 8
        for index, g in enumerate(geometry[1:], start=1):
            _, _, snn, _ = layer_energy(g, trace.synops[:, index].sum() / frames, trace.events[:, index].sum() / frames,
                                        float(trace.dense_macs[index]), steps, table, int8, on_chip)
            rest += snn.total
        conventional = {"pixel_readout": pixels * sensor.pixel_readout_pj * PJ,
                        "adc": pixels * sensor.adc_pj(self.adc_bits) * PJ,
                        "link": raw_bits * sensor.link_pj_per_bit * PJ,
                        "first_layer": first_on_processor, "rest_of_network": rest}
        in_sensor = {"in_pixel_macs": trace.dense_macs[0] * steps * sensor.in_pixel_mac_pj * PJ,
                     "spike_readout": neurons * steps * (sensor.pixel_readout_pj + sensor.comparator_pj) * PJ,
                     "link": float(sent_bits.mean()) * sensor.link_pj_per_bit * PJ,
                     "rest_of_network": rest}
        e_conv, e_in = sum(conventional.values()), sum(in_sensor.values())
        frame_time = sent_bits / sensor.link_bits_per_s
        latency = float(frame_time.mean())
        details = {
            "sensor": sensor.name, "adc_bits": self.adc_bits, "link_format": self.link_format,
            "first_layer": first.name, "in_pixel_output": [steps, *first.output_shape],
            "raw_bits_per_frame": int(raw_bits), "sent_bits_per_frame": float(sent_bits.mean()),
            "spikes_per_frame": float(spikes.mean()),
            "bandwidth_reduction": raw_bits / float(sent_bits.mean()),
            "closed_form_bandwidth_reduction": closed_form_bandwidth_reduction(
                first.stride[0], first.output_channels, steps, self.adc_bits, c_in),
            "conventional_j_per_frame": e_conv, "in_sensor_j_per_frame": e_in,
            "energy_reduction": e_conv / e_in if e_in else float("inf"),
            "front_end_energy_reduction": (e_conv - rest) / (e_in - rest) if e_in > rest else float("inf"),
            "conventional_breakdown": {k: float(v) for k, v in conventional.items()},
            "in_sensor_breakdown": {k: float(v) for k, v in in_sensor.items()},
            "conventional_fps_link_bound": sensor.link_bits_per_s / raw_bits,
            "geometry_exact": all(g.exact for g in geometry),
        }
        return HardwareResult(
            target=self.name, schedule=None, frames=trace.frames, frame_time_s=frame_time,
            fps=1.0 / latency if latency > 0 else float("inf"), latency_s=latency, energy_j_per_frame=e_in,
            energy_breakdown={k: float(v) for k, v in in_sensor.items()},
            compute_only_j_per_frame=estimate_energy(trace, "int8", geometry=geometry).snn_compute_only_j,
            details=details)

    @staticmethod
    def sensor_dict(result: HardwareResult) -> dict:
        """The ``sensor`` entry of report.json."""
        d = result.details
        return {"bandwidth_reduction": d["bandwidth_reduction"], "energy_reduction": d["energy_reduction"],
                "raw_bits_per_frame": d["raw_bits_per_frame"], "sent_bits_per_frame": d["sent_bits_per_frame"],
                "link_format": d["link_format"], "adc_bits": d["adc_bits"],
                "closed_form_bandwidth_reduction": d["closed_form_bandwidth_reduction"]}
