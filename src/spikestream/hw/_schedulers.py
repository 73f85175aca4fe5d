"""Schedulers: which processing element (PE) does each work unit of a layer, frame by frame.

A scheduler receives the measured cost of every work unit in every frame, ``costs`` (frames, units),
the number of PEs P, the trace's keyframe flags and optionally what moving each unit to another PE
costs, ``move_costs`` (units,): the cycles one PE spends receiving the unit's weights and state over
its own memory port. A remap between frames copies its moved units over all P ports at once, so it
takes Σ move_costs[moved] / P; a unit stolen during a frame (``adaptive-kwbs``) costs its thief
move_costs[u]. The scheduler returns a ``Schedule``: the PE of every unit in every frame and the PE
loads (frames, P), each the cycle at which that PE finishes the layer's synaptic phase (steals'
copying included). The phase ends when the last PE ends, so its time is ``loads.max(1)``; the balance
ratio is mean load ÷ max load.

Causality: a scheduler that profiles a frame can only use what it measured *after* running that
frame, so a mapping computed from frame f takes effect at frame f + 1. Only the per-frame oracle
sees a frame's costs before running it.

| name            | rule                                                                              |
|-----------------|-----------------------------------------------------------------------------------|
| static          | contiguous equal split of the unit index range (the baseline)                     |
| round-robin     | unit u on PE u mod P                                                              |
| kwbs            | on each keyframe (trace keyframes, else every K frames) LPT on its measured costs |
| adaptive-kwbs   | kwbs, also re-profiling when a frame's makespan strays from its lower bound;      |
|                 | during a frame, a PE out of work steals a queued unit when that ends it sooner    |
| oracle          | LPT on each frame's own costs (perfect knowledge)                                 |
| ideal           | the preemptive lower bound max(Σ costs / P, max cost) (McNaughton 1959)           |

LPT (longest processing time first, Graham 1969) sorts units by decreasing cost and gives each to
the least loaded PE; its makespan is at most (4/3 − 1/(3P)) times the optimum. Work stealing
(Blumofe & Leiserson 1999) lets a PE that ran out of work take queued work from another at run time.
"""

from __future__ import annotations

import heapq
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass

import numpy as np

from spikestream.errors import InputError


class ScheduleError(InputError):
    """An unknown scheduler or a bad scheduler option."""


@dataclass(frozen=True)
class Schedule:
    loads: np.ndarray  # (frames, P) cycle at which every PE ends (its work plus steals' copying)
    assignment: np.ndarray | None  # (frames, units) PE that ran every unit; None for the ideal bound
    remapped: np.ndarray  # (frames,) bool: a new mapping took effect at the start of this frame
    moved: np.ndarray  # (frames,) int: units a remap moved before this frame (copied between frames)
    steals: np.ndarray  # (frames,) int: units stolen during this frame (their copying is inside loads)

    @property
    def makespan(self) -> np.ndarray:
        """(frames,) cost of the most loaded PE."""
        return self.loads.max(1) if self.loads.size else np.zeros(self.loads.shape[0])

    @property
    def balance(self) -> np.ndarray:
        """(frames,) mean PE load ÷ max PE load (1 for an empty frame)."""
        peak = self.makespan
        mean = self.loads.mean(1)
        return np.divide(mean, peak, out=np.ones_like(mean, dtype=np.float64), where=peak > 0)


# --- assignment rules ------------------------------------------------------------------------------


def static_assignment(units: int, processors: int) -> np.ndarray:
    """Contiguous equal split: PE p gets units [p·U/P, (p+1)·U/P) (one unit each when U < P)."""
    return (np.arange(units) * processors // max(units, 1)).astype(np.int64)


def round_robin_assignment(units: int, processors: int) -> np.ndarray:
    return (np.arange(units) % processors).astype(np.int64)


def lpt_assignment(costs: np.ndarray, processors: int) -> np.ndarray:
    """Longest processing time first. Ties between equally loaded PEs go to the one holding fewer
    units, so units measured at zero cost are spread out rather than piled onto one PE (they may
    carry work in later frames)."""
    costs = np.asarray(costs, dtype=np.float64)
    order = np.argsort(-costs, kind="stable")
    heap = [(0.0, 0, pe) for pe in range(processors)]  # (load, units held, PE)
    assignment = np.empty(costs.shape[0], dtype=np.int64)
    for unit in order:
        load, held, pe = heapq.heappop(heap)
        assignment[unit] = pe
        heapq.heappush(heap, (load + float(costs[unit]), held + 1, pe))
    return assignment


def loads_of(assignment: np.ndarray, costs: np.ndarray, processors: int) -> np.ndarray:
    """(frames, P) loads of a (frames, units) assignment of (frames, units) costs."""
    frames = costs.shape[0]
    flat = (assignment + np.arange(frames)[:, None] * processors).ravel()
    return np.bincount(flat, weights=costs.ravel().astype(np.float64), minlength=frames * processors
                       ).reshape(frames, processors)


def run_with_stealing(owner: np.ndarray, costs: np.ndarray, predicted: np.ndarray, steal_costs: np.ndarray,
                      processors: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One synaptic phase of one frame on P PEs that steal work from each other (event-driven).

    PE p starts with a queue of the units it owns (``owner == p``), largest ``predicted`` cost first,
    and runs them back to back; unit u takes ``costs[u]`` cycles. A PE whose queue is empty at cycle t
    looks at what the others have left, as predicted: R_v = Σ predicted of v's queued units + what is
    predicted to remain of the unit v runs, max(its predicted end − t, 0). From the PE with the largest
    R_v that has a worthwhile unit, it steals the last queued unit with a positive prediction, u, and
    runs it after receiving its weights and state (``steal_costs[u]`` cycles). Worthwhile means
    R_v > steal_costs[u] + predicted[u]: the victim would otherwise end after the thief ends with u.
    A PE that finds nothing worthwhile is done: R_v only shrinks and queue tails only grow, so nothing
    becomes worthwhile later.

    Returns (finish, ran_on, steals): (P,) cycle at which every PE ends, copying included, so
    Σ finish = Σ costs + Σ steal_costs of the stolen units; (U,) PE that ran every unit; and the
    number of stolen units."""
    order = np.argsort(-predicted, kind="stable")
    queued = [deque() for _ in range(processors)]  # units predicted to carry work, largest first
    idle_tail = [deque() for _ in range(processors)]  # units predicted empty: never worth stealing
    for unit in order:
        (queued if predicted[unit] > 0 else idle_tail)[owner[unit]].append(unit)
    queued_prediction = np.bincount(owner, weights=predicted, minlength=processors).astype(np.float64)
    predicted_end = np.zeros(processors)  # predicted end of the unit each PE runs
    ran_on = np.array(owner, dtype=np.int64, copy=True)
    finish = np.zeros(processors)
    steals = 0
    events = [(0.0, pe) for pe in range(processors)]  # (cycle at which the PE is free, PE)
    while events:
        now, pe = heapq.heappop(events)
        own = queued[pe] or idle_tail[pe]
        if own:
            unit = own.popleft()
            queued_prediction[pe] -= predicted[unit]
            predicted_end[pe] = now + predicted[unit]
            heapq.heappush(events, (now + costs[unit], pe))
            continue
        left = queued_prediction + np.maximum(predicted_end - now, 0.0)  # (P,) R_v as the controller sees it
        for victim in np.argsort(-left, kind="stable"):
            if queued[victim] and left[victim] > steal_costs[queued[victim][-1]] + predicted[queued[victim][-1]]:
                break
        else:
            finish[pe] = now
            continue
        unit = queued[victim].pop()
        queued_prediction[victim] -= predicted[unit]
        ran_on[unit] = pe
        steals += 1
        predicted_end[pe] = now + steal_costs[unit] + predicted[unit]
        heapq.heappush(events, (now + steal_costs[unit] + costs[unit], pe))
    return finish, ran_on, steals


def balance_ratio(loads: np.ndarray) -> float:
    """Aggregate balance: Σ mean load ÷ Σ max load over frames (or layers and frames)."""
    loads = np.asarray(loads, dtype=np.float64)
    peak = loads.max(-1).sum()
    return float(loads.mean(-1).sum() / peak) if peak > 0 else 1.0


def _schedule(assignment: np.ndarray, costs: np.ndarray, processors: int) -> Schedule:
    moved = np.zeros(costs.shape[0], dtype=np.int64)
    moved[1:] = (assignment[1:] != assignment[:-1]).sum(1)
    return Schedule(loads_of(assignment, costs, processors), assignment, moved > 0, moved, np.zeros_like(moved))


def _check(costs: np.ndarray, processors: int) -> np.ndarray:
    costs = np.asarray(costs, dtype=np.float64)
    if costs.ndim != 2:
        raise ScheduleError(f"costs must be (frames, units), not shape {costs.shape}")
    if int(processors) != processors or processors < 1:
        raise ScheduleError(f"the number of processing elements must be a positive integer, not {processors!r}")
    if (costs < 0).any():
        raise ScheduleError("work unit costs must be non-negative")
    return costs


def _check_move_costs(move_costs: np.ndarray | None, units: int) -> np.ndarray:
    """(units,) cycles to receive each unit; zeros when the caller gives none."""
    if move_costs is None:
        return np.zeros(units)
    move_costs = np.asarray(move_costs, dtype=np.float64)
    if move_costs.shape != (units,) or (move_costs < 0).any():
        raise ScheduleError(f"move_costs must be {units} non-negative cycle counts (one per unit), not shape "
                            f"{move_costs.shape}")
    return move_costs


# --- the registry -----------------------------------------------------------------------------------------


class Scheduler(ABC):
    """Base class: ``schedule(costs (frames, units), processors, keyframes (frames,)) -> Schedule``."""

    name = "scheduler"

    @abstractmethod
    def schedule(self, costs: np.ndarray, processors: int, keyframes: np.ndarray | None = None,
                 move_costs: np.ndarray | None = None) -> Schedule:
        """The PE of every unit in every frame, and the resulting loads."""


SCHEDULERS: dict[str, type[Scheduler]] = {}


def register_scheduler(name: str):
    """Class decorator adding a scheduler to ``SCHEDULERS`` under ``name`` (duplicates rejected)."""

    def decorate(cls: type[Scheduler]) -> type[Scheduler]:
        if name in SCHEDULERS:
            raise ValueError(f"scheduler {name!r} is registered twice")
        cls.name = name
        SCHEDULERS[name] = cls
        return cls

    return decorate


def make_scheduler(name: str, **options) -> Scheduler:
    """A scheduler by registry name; options the scheduler does not take are rejected."""
    if name not in SCHEDULERS:
        raise ScheduleError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULERS)}")
    try:
        return SCHEDULERS[name](**options)
    except TypeError as error:
        raise ScheduleError(f"schedule {name!r} does not take these options: {error}") from None


@register_scheduler("static")
class StaticScheduler(Scheduler):
    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        costs = _check(costs, processors)
        assignment = np.broadcast_to(static_assignment(costs.shape[1], processors), costs.shape)
        return _schedule(np.ascontiguousarray(assignment), costs, processors)


@register_scheduler("round-robin")
class RoundRobinScheduler(Scheduler):
    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        costs = _check(costs, processors)
        assignment = np.broadcast_to(round_robin_assignment(costs.shape[1], processors), costs.shape)
        return _schedule(np.ascontiguousarray(assignment), costs, processors)


def _keyframe_flags(frames: int, keyframes: np.ndarray | None, every: int, follow_trace: bool = True) -> np.ndarray:
    """The trace's keyframes when it marks any (and ``follow_trace``), else every ``every``-th frame
    (frame 0 included)."""
    if follow_trace and keyframes is not None and np.asarray(keyframes).any():
        flags = np.asarray(keyframes, dtype=bool).copy()
    else:
        flags = np.arange(frames) % every == 0
    return flags


@register_scheduler("kwbs")
class KeyframeScheduler(Scheduler):
    """Keyframe-dominated workload balance (FrameFire's KWBS): profile on a keyframe, LPT, reuse."""

    def __init__(self, every: int = 8, follow_trace: bool = True):
        if int(every) != every or every < 1:
            raise ScheduleError(f"keyframe interval must be a positive integer, not {every!r}")
        self.every = int(every)
        self.follow_trace = bool(follow_trace)  # False: profile every `every` frames, whatever the trace marks

    def _reprofile(self, costs_f: np.ndarray, mapping: np.ndarray, processors: int,
                   move_costs: np.ndarray | None) -> bool:
        return False

    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        costs = _check(costs, processors)
        frames, units = costs.shape
        profile = _keyframe_flags(frames, keyframes, self.every, self.follow_trace)
        mapping = static_assignment(units, processors)  # before the first measurement
        assignment = np.empty((frames, units), dtype=np.int64)
        for f in range(frames):
            assignment[f] = mapping
            if profile[f] or self._reprofile(costs[f], mapping, processors, move_costs):
                mapping = lpt_assignment(costs[f], processors)  # measured now, used from frame f + 1
        return _schedule(assignment, costs, processors)


@register_scheduler("adaptive-kwbs")
class AdaptiveKeyframeScheduler(KeyframeScheduler):
    """KWBS with two additions, one between frames and one during them.

    Re-profiling: after a frame whose measured makespan was far from what any mapping could have
    reached on it, when lower bound ÷ makespan < ``threshold`` (the bound being max(Σ c / P, max c) of
    the frame's own measured costs), the frame's LPT mapping is used from the next frame on. Why the
    bound and not the plain balance ratio: when one unit outweighs the mean PE load, no mapping
    balances the frame, and a rule on mean ÷ max would re-profile (and pay to move units) on every such
    frame for nothing. Given ``move_costs``, it re-profiles only when the new mapping's gain on the
    measured frame exceeds the remap's copying, Σ move_costs[moved] / P.

    Work stealing (``steal=True``): within a frame each PE runs its own units, largest predicted cost
    first, and a PE that runs out takes a queued unit from the PE with the most predicted work left,
    paying ``move_costs[u]`` to receive it (``run_with_stealing``). The prediction of a unit's cost is
    its measured cost in the previous frame, the same per-unit counters the re-profiling rule reads;
    the controller also knows which units have started and when, and the thief knows it is idle. It
    does not know a frame's costs before running it. A stolen unit's state stays with its thief: the
    unit belongs to the thief from the next frame on, until a remap moves it. Re-profiling is what
    fixes a mapping that went stale between keyframes; stealing absorbs the frame-to-frame change of
    the work that no mapping made from past frames can foresee."""

    def __init__(self, every: int = 8, threshold: float = 0.9, follow_trace: bool = True, steal: bool = True):
        super().__init__(every, follow_trace)
        if not 0 < threshold <= 1:
            raise ScheduleError(f"balance threshold must be in (0, 1], not {threshold!r}")
        self.threshold = float(threshold)
        self.steal = bool(steal)  # False: the re-profiling rule alone, each PE runs only its own units

    def _reprofile(self, costs_f, mapping, processors, move_costs):
        peak = np.bincount(mapping, weights=costs_f, minlength=processors).max()
        bound = max(costs_f.sum() / processors, costs_f.max(initial=0.0))
        if not (peak > 0 and bound / peak < self.threshold):
            return False
        if move_costs is None:
            return True
        # worth it only if the gain the new mapping shows on this frame pays for moving the units
        candidate = lpt_assignment(costs_f, processors)
        gain = peak - np.bincount(candidate, weights=costs_f, minlength=processors).max()
        return bool(gain > np.asarray(move_costs)[candidate != mapping].sum() / processors)

    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        if not self.steal:
            return super().schedule(costs, processors, keyframes, move_costs)
        costs = _check(costs, processors)
        frames, units = costs.shape
        steal_costs = _check_move_costs(move_costs, units)
        profile = _keyframe_flags(frames, keyframes, self.every, self.follow_trace)
        owner = static_assignment(units, processors)  # where each unit's weights and state are
        predicted = np.zeros(units)  # nothing measured before frame 0
        loads = np.zeros((frames, processors))
        assignment = np.empty((frames, units), dtype=np.int64)
        moved = np.zeros(frames, dtype=np.int64)
        steals = np.zeros(frames, dtype=np.int64)
        for f in range(frames):
            loads[f], assignment[f], steals[f] = run_with_stealing(owner, costs[f], predicted, steal_costs,
                                                                   processors)
            owner = assignment[f]  # stolen units stay with their thieves
            if profile[f] or self._reprofile(costs[f], owner, processors, move_costs):
                mapping = lpt_assignment(costs[f], processors)  # measured now, used from frame f + 1
                if f + 1 < frames:
                    moved[f + 1] = (mapping != owner).sum()
                owner = mapping
            predicted = costs[f]
        return Schedule(loads, assignment, moved > 0, moved, steals)


@register_scheduler("oracle")
class OracleScheduler(Scheduler):
    """Per-frame LPT with perfect knowledge of the frame's own costs (not causal: an upper reference)."""

    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        costs = _check(costs, processors)
        assignment = np.stack([lpt_assignment(c, processors) for c in costs]) if costs.shape[0] else \
            np.zeros(costs.shape, np.int64)
        return _schedule(assignment, costs, processors)


@register_scheduler("ideal")
class IdealBound(Scheduler):
    """The lower bound on any schedule's makespan, max(Σ c / P, max c): reached when work may be split
    across PEs except that one unit never runs on two PEs at once (McNaughton's wrap-around rule).
    Loads: the largest unit on one PE if it exceeds the mean, the rest spread evenly."""

    def schedule(self, costs, processors, keyframes=None, move_costs=None):
        costs = _check(costs, processors)
        frames = costs.shape[0]
        total = costs.sum(1)
        largest = costs.max(1) if costs.shape[1] else np.zeros(frames)
        mean = total / processors
        loads = np.repeat(mean[:, None], processors, axis=1)
        heavy = largest > mean
        if processors > 1:
            rest = (total - largest) / (processors - 1)
            loads[heavy, 0] = largest[heavy]
            loads[heavy, 1:] = rest[heavy, None]
        zeros = np.zeros(frames, dtype=np.int64)
        return Schedule(loads, None, zeros.astype(bool), zeros, zeros)
