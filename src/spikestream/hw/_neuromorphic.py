"""A Loihi-like many-core neuromorphic chip: partitioner and per-core time and energy from a Trace.

Partitioning (``partition``): every synaptic layer gets its own cores. A convolutional layer is cut
into channel groups × blocks of output rows × blocks of output columns, a linear layer into groups of
output neurons; each layer takes the smallest number of cores for which every core respects the chip's
limits:

- neurons on the core ≤ ``neurons_per_core``;
- synapse memory: (shared weights) channels × fan-in × bits, else neurons × fan-in × bits, ≤ the
  core's synaptic memory;
- fan-in: distinct input elements (axons) the core's neurons read ≤ ``fan_in_per_core``.

A layer that cannot fit even when cut down to single neurons, or a network needing more cores than
the chips have, is rejected with a message naming the layer and the limit.

Activity: a layer's synops are split over its cores by the Trace's per-channel and per-tile work (the
product of the channel, row and column shares); neuron updates are every neuron on the core, every time step;
messages are the events the next layer receives, each sent to every core of that layer whose input
window holds it. Per frame:

    core time   = synops · t_synop + updates · t_update + messages sent · t_spike
    frame time  = max(max over cores of core time + T · t_barrier, input events · bits / I/O bandwidth)
    latency     = frame time + (layers − 1) · frame time / T      (one step per layer of pipeline depth)
    energy      = synops · e_synop + updates · e_update + messages · (e_spike + hops · e_hop)
                  + static power · chips · frame time
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from spikestream.config import NeuromorphicChip, load_neuromorphic_chip
from spikestream.hw._energy import estimate_energy
from spikestream.hw._geometry import LayerGeometry, trace_geometry
from spikestream.hw._targets import HardwareResult, Target, TargetError, register_target


@dataclass(frozen=True)
class LayerPlacement:
    """How one layer is cut onto cores: channel groups × row blocks × column blocks."""

    layer: str
    cores: int
    channel_groups: int
    row_groups: int
    column_groups: int
    neurons_per_core: int  # on the fullest core
    synapse_bits_per_core: int
    fan_in_per_core: int

    def to_dict(self) -> dict:
        return asdict(self)


def _input_span(outputs: int, kernel: int, stride: int, transposed: bool) -> int:
    """Input rows (or columns) that ``outputs`` consecutive output rows read."""
    return math.ceil((outputs + kernel) / stride) if transposed else (outputs - 1) * stride + kernel


def _core_needs(g: LayerGeometry, channel_groups: int, row_groups: int, column_groups: int,
                chip: NeuromorphicChip) -> tuple[int, int, int]:
    """(neurons, synapse bits, input axons) of the fullest core when ``g`` is cut this way."""
    channels = math.ceil(g.output_channels / channel_groups)
    if g.kind == "Linear":
        return channels, channels * g.fan_in * chip.weight_bits, g.input_channels
    height, width = g.spatial
    rows, columns = math.ceil(height / row_groups), math.ceil(width / column_groups)
    neurons = channels * rows * columns
    per_group_in = g.input_channels // g.groups
    in_channels = min(g.input_channels, math.ceil(channels * g.groups / g.output_channels) * per_group_in)
    _, in_height, in_width = g.input_shape
    transposed = g.kind == "ConvTranspose2d"
    axons = (in_channels * min(in_height, _input_span(rows, g.kernel[0], g.stride[0], transposed))
             * min(in_width, _input_span(columns, g.kernel[1], g.stride[1], transposed)))
    weights = channels * g.fan_in if chip.shared_weights else neurons * g.fan_in
    return neurons, weights * chip.weight_bits, axons


def place_layer(g: LayerGeometry, chip: NeuromorphicChip) -> LayerPlacement:
    """The fewest cores on which ``g`` respects every core limit (neurons, synapse memory, fan-in)."""
    limits = (chip.neurons_per_core, chip.synapse_memory_bits, chip.fan_in_per_core)

    def fits(*groups: int) -> bool:
        return all(n <= limit for n, limit in zip(_core_needs(g, *groups, chip), limits, strict=True))

    if g.kind == "Linear":  # closed form: as many neurons per core as memory and the neuron limit allow
        per_core = min(chip.neurons_per_core, chip.synapse_memory_bits // max(1, g.fan_in * chip.weight_bits))
        if per_core >= 1 and g.fan_in <= chip.fan_in_per_core:
            cores = math.ceil(g.output_channels / per_core)
            return LayerPlacement(g.name, cores, cores, 1, 1, *_core_needs(g, cores, 1, 1, chip))
        height = width = 1
    else:
        height, width = g.spatial
        best: LayerPlacement | None = None
        for channel_groups in range(1, g.output_channels + 1):
            for column_groups in range(1, width + 1):
                if best is not None and channel_groups * column_groups >= best.cores:
                    break
                if not fits(channel_groups, height, column_groups):
                    continue
                low, high = 1, height  # needs shrink as row blocks shrink: bisect the fewest row groups
                while low < high:
                    middle = (low + high) // 2
                    low, high = (low, middle) if fits(channel_groups, middle, column_groups) else (middle + 1, high)
                cores = channel_groups * low * column_groups
                if best is None or cores < best.cores:
                    best = LayerPlacement(g.name, cores, channel_groups, low, column_groups,
                                          *_core_needs(g, channel_groups, low, column_groups, chip))
        if best is not None:
            return best
    needs = _core_needs(g, g.output_channels, height, width, chip)
    names = ("neurons", "synapse memory bits", "input axons (fan-in)")
    broken = [f"{name} {n:,} > {limit:,}" for name, n, limit in zip(names, needs, limits, strict=True) if n > limit]
    raise TargetError(f"layer {g.name!r} ({g.kind} {g.input_shape} -> {g.output_shape}) does not fit a "
                      f"{chip.name} core even cut down to single neurons: {'; '.join(broken)}")


def partition(geometry: list[LayerGeometry], chip: NeuromorphicChip, chips: int = 1) -> list[LayerPlacement]:
    """Place every layer; reject a network that needs more cores than ``chips`` chips have."""
    placements = [place_layer(g, chip) for g in geometry]
    needed = sum(p.cores for p in placements)
    available = chips * chip.cores_per_chip
    if needed > available:
        largest = sorted(placements, key=lambda p: -p.cores)[:3]
        parts = ", ".join(f"{p.layer}: {p.cores}" for p in largest)
        raise TargetError(f"the network needs {needed:,} {chip.name} cores but {chips} chip(s) have {available:,} "
                          f"(largest layers: {parts}); allow more chips or use a smaller network")
    return placements


def _shares(work: np.ndarray, groups: int) -> np.ndarray:
    """(frames, n) work -> (frames, groups) fractions of contiguous groups (uniform where no work)."""
    frames, n = work.shape
    size = math.ceil(n / groups)
    summed = np.zeros((frames, groups))
    for group in range(groups):
        summed[:, group] = work[:, group * size:(group + 1) * size].sum(1)
    total = summed.sum(1, keepdims=True)
    return np.divide(summed, total, out=np.full_like(summed, 1.0 / groups), where=total > 0)


def _spatial_work(trace, g: LayerGeometry, axis: int) -> np.ndarray:
    """(frames, output rows or columns) work, from the per-tile work (uniform within a tile)."""
    tiles = trace.tile_work(g.name).sum(2 if axis == 0 else 1).astype(np.float64)  # (F, tiles along axis)
    size = g.spatial[axis]
    index = np.minimum(np.arange(size) // trace.tile[axis], tiles.shape[1] - 1)
    per_tile = np.bincount(index, minlength=tiles.shape[1]).astype(np.float64)
    return tiles[:, index] / per_tile[index]


def core_synops(trace, index: int, g: LayerGeometry, placement: LayerPlacement) -> np.ndarray:
    """(frames, cores) synops of every core of one layer: the layer's synops times the product of its
    channel-group, row-block and column-block shares of the work."""
    synops = trace.synops[:, index].astype(np.float64)
    frames = trace.frames

    def uniform(groups: int) -> np.ndarray:
        return np.full((frames, groups), 1.0 / groups)

    spatial = trace.record_work and g.kind != "Linear" and g.exact
    channel = (_shares(trace.channel_work(g.name).astype(np.float64), placement.channel_groups)
               if trace.record_work else uniform(placement.channel_groups))
    rows = _shares(_spatial_work(trace, g, 0), placement.row_groups) if spatial else uniform(placement.row_groups)
    columns = (_shares(_spatial_work(trace, g, 1), placement.column_groups) if spatial
               else uniform(placement.column_groups))
    share = channel[:, :, None, None] * rows[:, None, :, None] * columns[:, None, None, :]
    return synops[:, None] * share.reshape(frames, -1)


def _destinations(g: LayerGeometry, placement: LayerPlacement) -> float:
    """Cores of a layer that receive one of its input events: every channel group, and the row and
    column blocks whose input windows overlap at the event's position."""
    if g.kind == "Linear":
        return float(placement.channel_groups)
    total = float(placement.channel_groups)
    for axis, groups in ((0, placement.row_groups), (1, placement.column_groups)):
        if groups > 1:
            span = g.spatial[axis] / groups * g.stride[axis]
            total *= 1.0 + min(1.0, max(0.0, g.kernel[axis] - g.stride[axis]) / max(1.0, span))
    return total


@register_target("neuromorphic")
class NeuromorphicTarget(Target):
    """Loihi-like cores; ``chip`` names a preset of ``presets/neuromorphic.toml``."""

    def __init__(self, chip: str = "loihi2", chips: int = 1, preset: str = "neuromorphic"):
        self.chip = load_neuromorphic_chip(chip, preset)
        if int(chips) != chips or chips < 1:
            raise TargetError(f"chips must be a positive integer, not {chips!r}")
        self.chips = int(chips)

    def simulate(self, trace, schedule: str | None = None, **schedule_options) -> HardwareResult:
        chip = self.chip
        geometry = trace_geometry(trace)
        graded = [g.name for g in geometry[1:] if g.graded_input]
        if graded and not chip.graded_spikes:
            raise TargetError(f"layers {', '.join(graded)} receive graded events (e.g. sigma-delta), but {chip.name} "
                              f"sends binary spikes only; use a chip with graded spikes (loihi2)")
        placements = partition(geometry, chip, self.chips)
        steps = int(trace.metadata.get("steps") or 1)
        frames = trace.frames
        events = trace.events.astype(np.float64)  # (F, L): input events of every layer

        core_time, synop_energy, update_energy, message_energy = [], 0.0, 0.0, 0.0
        message_pj = chip.spike_pj + chip.mean_hops * chip.hop_pj
        layers = []
        for index, (g, placement) in enumerate(zip(geometry, placements, strict=True)):
            synops = core_synops(trace, index, g, placement)  # (F, cores)
            updates = g.neurons * steps / placement.cores  # per core per frame
            if index + 1 < len(geometry):  # this layer's output events are the next layer's input events
                sent = events[:, index + 1] * _destinations(geometry[index + 1], placements[index + 1])
            else:
                sent = np.zeros(frames)
            share = np.divide(synops, synops.sum(1, keepdims=True), out=np.full_like(synops, 1 / placement.cores),
                              where=synops.sum(1, keepdims=True) > 0)
            messages = sent[:, None] * share  # (F, cores)
            time_ns = synops * chip.synop_ns + updates * chip.neuron_update_ns + messages * chip.spike_ns
            core_time.append(time_ns)
            synop_energy += synops.sum() / frames * chip.synop_pj
            update_energy += g.neurons * steps * chip.neuron_update_pj
            message_energy += sent.mean() * message_pj
            layers.append({**placement.to_dict(), "synops_per_frame": float(synops.sum(1).mean()),
                           "messages_per_frame": float(sent.mean()),
                           "max_core_time_us": float(time_ns.max(1).mean() / 1e3)})
        input_messages = events[:, 0] * _destinations(geometry[0], placements[0])
        message_energy += input_messages.mean() * message_pj
        times = np.concatenate(core_time, axis=1)  # (F, total cores) ns
        compute_s = (times.max(1) + steps * chip.barrier_ns) * 1e-9
        io_s = events[:, 0] * chip.event_bits / chip.io_bits_per_s
        frame_time = np.maximum(compute_s, io_s)
        cores_used = sum(p.cores for p in placements)
        chips_used = math.ceil(cores_used / chip.cores_per_chip)
        mean_frame = float(frame_time.mean())
        latency = mean_frame + (len(geometry) - 1) * mean_frame / steps
        breakdown = {"synops": synop_energy * 1e-12, "neuron_updates": update_energy * 1e-12,
                     "messages": message_energy * 1e-12, "static": chip.static_power_w * chips_used * mean_frame}
        peak = times.max(1)
        balance = float(times.mean(1).sum() / peak.sum()) if peak.sum() > 0 else 1.0
        details = {"chip": chip.name, "chips": chips_used, "cores": cores_used,
                   "cores_available": self.chips * chip.cores_per_chip, "steps_per_frame": steps,
                   "io_bound_frames": int((io_s > compute_s).sum()), "layers": layers,
                   "geometry_exact": all(g.exact for g in geometry)}
        return HardwareResult(
            target=self.name, schedule=None, frames=frames, frame_time_s=frame_time,
            fps=1.0 / mean_frame if mean_frame > 0 else float("inf"), latency_s=latency,
            energy_j_per_frame=sum(breakdown.values()), energy_breakdown=breakdown,
            compute_only_j_per_frame=estimate_energy(trace, "int8", geometry=geometry).snn_compute_only_j,
            balance_ratio=balance, details=details)
