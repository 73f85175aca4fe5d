"""Energy of a Trace: the compute-only proxy and a memory-inclusive model, SNN vs equivalent ANN.

Both models price the same Trace with the constants of an energy table (``presets/energy-45nm.toml``,
Horowitz 2014) at one number format (``precision``: fp32 or int8). Per frame and per synaptic layer,
with S synops, E input events, M dense MACs, N output neurons, W weights, T steps per frame:

compute-only proxy
    SNN = S · e_syn, where e_syn is one accumulate for a binary spike and one multiply-accumulate
    for a graded (sigma-delta) event; ANN = M · e_MAC.
memory-inclusive (event-driven SNN vs output-stationary dense ANN, same memories)
    SNN = S · e_syn                                   compute
        + S · b_w · e_local                           weight fetch per synop (no reuse across events)
        + S · 2 b_s · e_local                         read-modify-write of the target potential
        + E · 2 (b_addr + b_val) · e_buffer           event written by the sender, read by the receiver
        + N · T · (e_acc + 2 b_s · e_local)           neuron update (threshold / sigma-delta) per step
        + W · b_w · e_weights                         weights brought on chip once per frame
    ANN = M · e_MAC + M · (b_w + b_a) · e_local       operands of every MAC from the local buffer
        + (inputs + N) · b_a · e_buffer               activations read once, written once
        + W · b_w · e_weights
where e_local is the 8 KB SRAM and e_buffer the 1 MB SRAM energy per bit, and e_weights is e_buffer
when all weights fit the on-chip capacity, else DRAM.

Break-even activity: scaling the measured synops and events by λ (same activity profile), the SNN
energy is A + λ·B (A: neuron updates and weight loading, B: the rest); it equals the ANN's C at
λ* = (C − A)/B, i.e. at activity λ*·(S/M). Below that activity the SNN costs less.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from spikestream.config import EnergyTable, Precision, bits_for, load_energy_table
from spikestream.hw._geometry import LayerGeometry, trace_geometry

PJ = 1e-12
PRECISIONS = ("fp32", "int8")  # the design points every report shows


@dataclass(frozen=True)
class EnergyBreakdown:
    """Joules per frame, by where the energy goes."""

    compute: float = 0.0
    weight_fetch: float = 0.0  # operand (weight, and for the ANN activation) fetch per synop / MAC
    state: float = 0.0  # potential read-modify-write per synop (SNN)
    events: float = 0.0  # event traffic (SNN) or activation traffic (ANN)
    neuron_updates: float = 0.0
    weight_load: float = 0.0  # weights brought on chip each frame

    @property
    def total(self) -> float:
        return sum(getattr(self, f.name) for f in fields(self))

    def __add__(self, other: EnergyBreakdown) -> EnergyBreakdown:
        return EnergyBreakdown(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def to_dict(self) -> dict:
        return {**asdict(self), "total": self.total}


@dataclass(frozen=True)
class EnergyEstimate:
    """SNN vs equivalent ANN energy per frame at one number format, both models, and break-even."""

    precision: str
    activity: float  # synops / dense MACs of the trace
    snn_compute_only_j: float
    ann_compute_only_j: float
    snn_memory: EnergyBreakdown
    ann_memory: EnergyBreakdown
    break_even_activity_compute_only: float  # the SNN costs less below this activity
    break_even_activity_memory: float
    weights_on_chip: bool

    @property
    def snn_memory_inclusive_j(self) -> float:
        return self.snn_memory.total

    @property
    def ann_memory_inclusive_j(self) -> float:
        return self.ann_memory.total

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "activity": self.activity,
            "compute_only": {"snn_j_per_frame": self.snn_compute_only_j, "ann_j_per_frame": self.ann_compute_only_j,
                             "snn_over_ann": _ratio(self.snn_compute_only_j, self.ann_compute_only_j),
                             "break_even_activity": self.break_even_activity_compute_only},
            "memory_inclusive": {"snn_j_per_frame": self.snn_memory.total, "ann_j_per_frame": self.ann_memory.total,
                                 "snn_over_ann": _ratio(self.snn_memory.total, self.ann_memory.total),
                                 "break_even_activity": self.break_even_activity_memory,
                                 "snn_breakdown": self.snn_memory.to_dict(),
                                 "ann_breakdown": self.ann_memory.to_dict()},
            "weights_on_chip": self.weights_on_chip,
        }


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _break_even(activity: float, fixed: float, variable: float, ann: float) -> float:
    """Activity at which fixed + λ·variable = ann (0 when the SNN never wins, inf when it always does)."""
    if variable <= 0:
        return float("inf") if fixed < ann else 0.0
    return max(0.0, activity * (ann - fixed) / variable)


def layer_energy(geometry: LayerGeometry, synops: float, events: float, dense_macs: float, steps: int,
                 table: EnergyTable, precision: Precision, weights_on_chip: bool
                 ) -> tuple[float, float, EnergyBreakdown, EnergyBreakdown]:
    """(SNN compute-only, ANN compute-only, SNN memory-inclusive, ANN memory-inclusive) of one layer
    for one frame with the given (mean) counts; joules."""
    e_acc = table.accumulate_pj(precision)
    e_mac = table.mac_pj(precision)
    e_syn = e_mac if geometry.graded_input else e_acc
    e_local, e_buffer = table.memory.local_pj_per_bit, table.memory.buffer_pj_per_bit
    e_weights = e_buffer if weights_on_chip else table.memory.dram_pj_per_bit
    b_w, b_a, b_s = precision.weight_bits, precision.activation_bits, precision.state_bits
    event_bits = bits_for(geometry.input_elements) + (b_a if geometry.graded_input else 0)
    snn = EnergyBreakdown(
        compute=synops * e_syn * PJ,
        weight_fetch=synops * b_w * e_local * PJ,
        state=synops * 2 * b_s * e_local * PJ,
        events=events * 2 * event_bits * e_buffer * PJ,
        neuron_updates=geometry.neurons * steps * (e_acc + 2 * b_s * e_local) * PJ,
        weight_load=geometry.weights * b_w * e_weights * PJ,
    )
    ann = EnergyBreakdown(
        compute=dense_macs * e_mac * PJ,
        weight_fetch=dense_macs * (b_w + b_a) * e_local * PJ,
        events=(geometry.input_elements + geometry.neurons) * b_a * e_buffer * PJ,
        weight_load=geometry.weights * b_w * e_weights * PJ,
    )
    return synops * e_syn * PJ, dense_macs * e_mac * PJ, snn, ann


def estimate_energy(trace, precision: str = "int8", table: EnergyTable | None = None,
                    geometry: list[LayerGeometry] | None = None) -> EnergyEstimate:
    """Mean energy per frame of the trace's SNN and of the equivalent ANN at one number format."""
    table = table or load_energy_table()
    chosen = table.precision(precision)
    geometry = geometry or trace_geometry(trace)
    steps = int(trace.metadata.get("steps") or 1)
    frames = max(1, trace.frames)
    synops = trace.synops.sum(0) / frames  # (L,) mean per frame
    events = trace.events.sum(0) / frames
    weight_bits = sum(g.weights for g in geometry) * chosen.weight_bits
    on_chip = weight_bits <= table.memory.on_chip_weight_bytes * 8
    snn_c = ann_c = 0.0
    snn_m, ann_m = EnergyBreakdown(), EnergyBreakdown()
    for g, s, e, m in zip(geometry, synops, events, trace.dense_macs, strict=True):
        sc, ac, sm, am = layer_energy(g, float(s), float(e), float(m), steps, table, chosen, on_chip)
        snn_c, ann_c, snn_m, ann_m = snn_c + sc, ann_c + ac, snn_m + sm, ann_m + am
    activity = float(synops.sum() / trace.dense_macs.sum()) if trace.dense_macs.sum() else 0.0
    fixed = snn_m.neuron_updates + snn_m.weight_load
    return EnergyEstimate(
        precision=precision, activity=activity, snn_compute_only_j=snn_c, ann_compute_only_j=ann_c,
        snn_memory=snn_m, ann_memory=ann_m,
        break_even_activity_compute_only=_break_even(activity, 0.0, snn_c, ann_c),
        break_even_activity_memory=_break_even(activity, fixed, snn_m.total - fixed, ann_m.total),
        weights_on_chip=bool(on_chip),
    )


def energy_report(trace, table: EnergyTable | None = None, geometry: list[LayerGeometry] | None = None) -> dict:
    """Both models at every design point (``PRECISIONS``), as plain data for report.json."""
    table = table or load_energy_table()
    geometry = geometry or trace_geometry(trace)
    frames = max(1, trace.frames)
    synops, macs = float(trace.synops.sum()) / frames, float(trace.dense_macs.sum())
    fp32 = table.precision("fp32")
    usual = {"snn_j_per_frame": synops * table.accumulate_pj(fp32) * PJ,
             "ann_j_per_frame": macs * table.mac_pj(fp32) * PJ,
             "break_even_activity": table.mac_pj(fp32) / table.accumulate_pj(fp32),
             "note": "every synop priced as one fp32 add (0.9 pJ), every MAC as 4.6 pJ, whatever the events carry"}
    return {"table": table.name, "geometry_exact": all(g.exact for g in geometry), "usual_proxy": usual,
            **{p: estimate_energy(trace, p, table, geometry).to_dict() for p in PRECISIONS}}


def per_frame_compute_energy(trace, precision: str = "int8", table: EnergyTable | None = None,
                             geometry: list[LayerGeometry] | None = None) -> np.ndarray:
    """(frames,) compute-only SNN energy of every frame, joules (for plots over time)."""
    table = table or load_energy_table()
    chosen = table.precision(precision)
    geometry = geometry or trace_geometry(trace)
    per_op = np.array([table.mac_pj(chosen) if g.graded_input else table.accumulate_pj(chosen) for g in geometry])
    return trace.synops @ per_op * PJ
