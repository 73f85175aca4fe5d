"""A FrameFire-like PE array on an FPGA, simulated cycle by cycle (per layer and frame) from a Trace.

Model (constants in ``presets/fpga.toml``):

- The layers of a frame run one after the other on all P PEs. A layer's work units (output
  channels, input channels or output tiles: the Trace's work arrays) are assigned to PEs by a
  scheduler; the synaptic phase of the layer takes ``max_p Σ_{u on p} work_u · cycles_per_synop``
  cycles (it ends when its slowest PE ends).
- Neuron updates (threshold / sigma-delta evaluation), ``neuron_update``:
  ``touched`` (default, event-driven): only neurons that received input are re-evaluated (a neuron
  without input cannot change: IF has no leak, a sigma-delta activation keeps its value), by the PE
  that owns them; a unit's cost is ``work · cycles_per_synop + min(neurons_u · T, work) / neuron_lanes``
  (the touched-neuron count is bounded by both). ``all``: a dense pass over every neuron every step,
  striped evenly over the PEs after the synaptic phase, ``ceil(N · T / (P · neuron_lanes))`` cycles.
  Input-channel units own no output neurons, so their touched neurons are striped the same way.
- Per layer, pipeline fill/drain and configuration cycles; when the schedule remaps units to other
  PEs between frames, their weights and state are copied at ``P · bram_port_bits`` bits per cycle
  (every PE receives over its own port). A unit stolen during a frame (adaptive KWBS) is received by
  its thief alone, ``unit bits / bram_port_bits`` cycles, which the schedule counts in that PE's load.
  The layer's input events wait in the shared event queues (control block RAM) until a PE starts
  their unit, so they follow the unit to whichever PE runs it.
- Memory: weights and neuron state live in block RAM when they fit; what does not fit is streamed
  from DDR every frame (weights read, state read and written), as is the input frame (8 bits per
  element). DDR transfers overlap computation (double buffering): a frame takes
  ``max(compute cycles, DDR cycles)``.
- Energy per frame: static power × frame time + busy PE cycles × PE dynamic power / clock + DDR bits
  × DDR energy per bit.

fps = 1 / mean frame time (frames are processed one after another, so latency = frame time).
Balance ratio = Σ mean PE load ÷ Σ max PE load over all layers and frames (synaptic phases).
"""

from __future__ import annotations

import math

import numpy as np

from spikestream.config import FPGADevice, PECost, load_fpga_preset
from spikestream.hw._energy import estimate_energy
from spikestream.hw._geometry import LayerGeometry, trace_geometry
from spikestream.hw._schedulers import balance_ratio, make_scheduler
from spikestream.hw._targets import HardwareResult, Target, TargetError, register_target

UNIT_KINDS = ("channel", "input_channel", "tile")
INPUT_PIXEL_BITS = 8  # the camera frame arrives in DDR as 8-bit samples


def work_units(trace, layer: str, kind: str) -> np.ndarray:
    """(frames, units) work of one layer split into units of the given kind."""
    if not trace.record_work:
        raise TargetError("the FPGA target needs per-channel and per-tile work; this trace was recorded "
                          "with record_work=False")
    if kind == "channel":
        return trace.channel_work(layer)
    if kind == "input_channel":
        return trace.input_channel_work(layer)
    if kind == "tile":
        work = trace.tile_work(layer)
        return work.reshape(work.shape[0], -1)
    raise TargetError(f"unknown work unit {kind!r}; choose one of: auto, {', '.join(UNIT_KINDS)}")


def choose_units(trace, layer: str, units: str) -> str:
    """``auto``: output channels or output tiles, whichever gives more units (channels on a tie)."""
    if units != "auto":
        return units
    channels = trace.channel_work(layer).shape[1]
    tile_shape = trace.tile_work(layer).shape[1:]
    return "tile" if tile_shape[0] * tile_shape[1] > channels else "channel"


def max_processing_elements(device: FPGADevice, pe: PECost) -> tuple[int, str]:
    """The most PEs that fit the device, and the resource that limits them."""
    limits = {
        "LUTs": (device.luts - pe.control_luts) // pe.luts,
        "flip-flops": (device.flip_flops - pe.control_flip_flops) // pe.flip_flops,
        "BRAM36": (device.bram_36kb - pe.control_bram_36kb) // pe.bram_36kb if pe.bram_36kb else 10**9,
        "DSP slices": device.dsp_slices // pe.dsp_slices if pe.dsp_slices else 10**9,
    }
    resource = min(limits, key=limits.get)
    return max(0, int(limits[resource])), resource


def unit_neurons(geometry: LayerGeometry, kind: str, tile: tuple[int, int]) -> np.ndarray | None:
    """(units,) output neurons owned by each unit (None for input-channel units, which own none)."""
    height, width = geometry.spatial
    if kind == "channel":
        return np.full(geometry.output_channels, height * width, dtype=np.float64)
    if kind == "tile":
        rows = np.minimum(tile[0], height - np.arange(0, height, tile[0]))
        cols = np.minimum(tile[1], width - np.arange(0, width, tile[1]))
        return (geometry.output_channels * np.outer(rows, cols)).ravel().astype(np.float64)
    return None


def _unit_bits(geometry: LayerGeometry, kind: str, tile: tuple[int, int], pe: PECost) -> int:
    """Bits a PE must receive when a unit moves to it (weights it needs that it lacked, and state)."""
    height, width = geometry.spatial
    if kind == "channel":
        return geometry.weights_per_output_channel * pe.weight_bits + height * width * pe.state_bits
    if kind == "tile":  # every PE holds the layer's weights for tile mapping; only state moves
        return geometry.output_channels * min(tile[0], height) * min(tile[1], width) * pe.state_bits
    return max(1, geometry.weights // max(1, geometry.input_channels)) * pe.weight_bits


@register_target("fpga")
class FPGATarget(Target):
    """P processing elements on an FPGA device; see the module docstring for the model."""

    uses_schedule = True

    def __init__(self, device: str = "XC7Z035", processing_elements: int = 16, units: str = "auto",
                 keyframe_every: int | None = None, neuron_update: str = "touched", preset: str = "fpga"):
        fpga = load_fpga_preset(preset)
        self.device = fpga.device(device)
        self.pe = fpga.pe
        if int(processing_elements) != processing_elements or processing_elements < 1:
            raise TargetError(f"processing_elements must be a positive integer, not {processing_elements!r}")
        self.processing_elements = int(processing_elements)
        most, resource = max_processing_elements(self.device, self.pe)
        if self.processing_elements > most:
            raise TargetError(f"{self.processing_elements} PEs do not fit the {self.device.name}: at most {most} "
                              f"(limited by {resource}); use fewer PEs or a larger device")
        if units != "auto" and units not in UNIT_KINDS:
            raise TargetError(f"unknown work unit {units!r}; choose one of: auto, {', '.join(UNIT_KINDS)}")
        self.units = units
        self.keyframe_every = keyframe_every
        if neuron_update not in ("touched", "all"):
            raise TargetError(f"neuron_update must be 'touched' or 'all', not {neuron_update!r}")
        self.neuron_update = neuron_update

    def resources(self) -> dict:
        """Resources used by the PE array and its control, and the device's totals."""
        p, pe, d = self.processing_elements, self.pe, self.device
        return {"luts": [p * pe.luts + pe.control_luts, d.luts],
                "flip_flops": [p * pe.flip_flops + pe.control_flip_flops, d.flip_flops],
                "bram_36kb": [p * pe.bram_36kb + pe.control_bram_36kb, d.bram_36kb],
                "dsp_slices": [p * pe.dsp_slices, d.dsp_slices]}

    def simulate(self, trace, schedule: str | None = "kwbs", **schedule_options) -> HardwareResult:
        schedule = schedule or "kwbs"
        if self.keyframe_every is not None and schedule in ("kwbs", "adaptive-kwbs"):
            schedule_options.setdefault("every", self.keyframe_every)
        scheduler = make_scheduler(schedule, **schedule_options)
        geometry = trace_geometry(trace)
        p, pe, device = self.processing_elements, self.pe, self.device
        steps = int(trace.metadata.get("steps") or 1)
        frames = trace.frames
        keyframes = trace.keyframes
        clock_hz = device.clock_mhz * 1e6

        compute_cycles = np.zeros(frames)
        busy_pe_cycles = np.zeros(frames)
        layers, pe_loads, all_loads = [], {}, []
        for g in geometry:
            kind = choose_units(trace, g.name, self.units)
            work = work_units(trace, g.name, kind).astype(np.float64)  # (F, U) arrivals
            costs = work * pe.cycles_per_synop
            owned = unit_neurons(g, kind, trace.tile)
            if self.neuron_update == "touched" and owned is not None and owned.shape[0] == work.shape[1]:
                costs = costs + np.minimum(work, owned * steps) / pe.neuron_lanes  # owner updates its touched
                neuron = np.zeros(frames)
            elif self.neuron_update == "touched":  # no owner: touched neurons striped over the PEs
                neuron = np.ceil(np.minimum(work.sum(1), g.neurons * steps) / (p * pe.neuron_lanes))
            else:
                neuron = np.full(frames, math.ceil(g.neurons * steps / (p * pe.neuron_lanes)))
            receive_cycles = _unit_bits(g, kind, trace.tile, pe) / pe.bram_port_bits  # one PE, one port
            plan = scheduler.schedule(costs, p, keyframes, np.full(costs.shape[1], receive_cycles))
            synaptic = np.ceil(plan.makespan)  # steals' copying is inside the loads
            remap = np.ceil(plan.moved * receive_cycles / p)  # between frames, over all P ports at once
            overhead = pe.pipeline_cycles + pe.layer_setup_cycles
            cycles = synaptic + neuron + remap + overhead
            compute_cycles += cycles
            busy_pe_cycles += plan.loads.sum(1) + neuron * p + remap * p
            pe_loads[g.name] = plan.loads
            all_loads.append(plan.loads)
            layers.append({"name": g.name, "units": kind, "unit_count": int(costs.shape[1]),
                           "mean_cycles": float(cycles.mean()), "synaptic_cycles": float(synaptic.mean()),
                           "neuron_cycles": float(neuron.mean()), "remap_cycles": float(remap.mean()),
                           "balance_ratio": balance_ratio(plan.loads), "remaps": int(plan.remapped.sum()),
                           "steals": int(plan.steals.sum())})

        # memory: what does not fit in block RAM streams from DDR every frame
        weight_bits = sum(g.weights for g in geometry) * pe.weight_bits
        state_bits = sum(g.neurons for g in geometry) * pe.state_bits
        capacity = device.on_chip_bits - pe.control_bram_36kb * 36 * 1024
        spill_weights = max(0, weight_bits - capacity)
        spill_state = max(0, state_bits - max(0, capacity - weight_bits))
        input_bits = geometry[0].input_elements * INPUT_PIXEL_BITS
        dram_bits = spill_weights + 2 * spill_state + input_bits
        dram_cycles = math.ceil(dram_bits / device.dram_bits_per_cycle)
        frame_cycles = np.maximum(compute_cycles, dram_cycles)
        frame_time = frame_cycles / clock_hz

        static = device.static_power_w * frame_time.mean()
        dynamic = busy_pe_cycles.mean() * device.pe_dynamic_power_w / clock_hz
        dram = dram_bits * device.dram_pj_per_bit * 1e-12
        breakdown = {"static": float(static), "pe_dynamic": float(dynamic), "dram": float(dram)}
        energy = sum(breakdown.values())
        latency = float(frame_time.mean())
        loads = np.concatenate([x.reshape(-1, p) for x in all_loads]) if all_loads else np.zeros((1, p))
        details = {
            "device": device.name, "processing_elements": p, "clock_mhz": device.clock_mhz,
            "neuron_update": self.neuron_update,
            "mean_cycles_per_frame": float(frame_cycles.mean()), "dram_bits_per_frame": int(dram_bits),
            "dram_cycles_per_frame": int(dram_cycles), "weights_on_chip": spill_weights == 0,
            "state_on_chip": spill_state == 0, "resources": self.resources(), "layers": layers,
            "geometry_exact": all(g.exact for g in geometry),
        }
        return HardwareResult(
            target=self.name, schedule=scheduler.name, frames=frames, frame_time_s=frame_time,
            fps=1.0 / latency if latency > 0 else float("inf"), latency_s=latency, energy_j_per_frame=energy,
            energy_breakdown=breakdown,
            compute_only_j_per_frame=estimate_energy(trace, "int8", geometry=geometry).snn_compute_only_j,
            balance_ratio=balance_ratio(loads), pe_loads=pe_loads, details=details)
