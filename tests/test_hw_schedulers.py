"""Schedulers against brute force on small cases, and their definitions (balance, causality, registry)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikestream.hw import (
    SCHEDULERS,
    ScheduleError,
    balance_ratio,
    lpt_assignment,
    make_scheduler,
    register_scheduler,
    static_assignment,
)
from spikestream.hw._schedulers import Scheduler, loads_of, run_with_stealing

TOLERANCE = 1e-9  # float sums of integer costs


def optimal_makespan(costs: np.ndarray, processors: int) -> float:
    """Brute force over every assignment of units to PEs."""
    best = np.inf
    for assignment in itertools.product(range(processors), repeat=len(costs)):
        loads = np.bincount(assignment, weights=costs, minlength=processors)
        best = min(best, loads.max())
    return float(best)


small_cases = st.tuples(
    st.lists(st.integers(0, 50), min_size=1, max_size=7).map(lambda c: np.array(c, dtype=np.float64)),
    st.integers(2, 3),
)


@settings(max_examples=60, deadline=None)
@given(small_cases)
def test_lpt_is_within_graham_bound_of_optimum(case):
    costs, processors = case
    optimum = optimal_makespan(costs, processors)
    lpt = np.bincount(lpt_assignment(costs, processors), weights=costs, minlength=processors).max()
    assert lpt <= (4 / 3 - 1 / (3 * processors)) * optimum + TOLERANCE


@settings(max_examples=60, deadline=None)
@given(small_cases)
def test_ideal_bound_is_below_optimum_and_every_schedule(case):
    costs, processors = case
    frames = np.repeat(costs[None], 3, axis=0)
    ideal = make_scheduler("ideal").schedule(frames, processors).makespan
    assert (ideal <= optimal_makespan(costs, processors) + TOLERANCE).all()
    for name in SCHEDULERS:
        makespan = make_scheduler(name).schedule(frames, processors).makespan
        assert (ideal <= makespan + TOLERANCE).all(), name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), min_size=5, max_size=5), min_size=1, max_size=6), st.integers(1, 4))
def test_every_schedule_conserves_work_and_oracle_equals_per_frame_lpt(rows, processors):
    costs = np.array(rows, dtype=np.float64)
    for name in SCHEDULERS:
        plan = make_scheduler(name).schedule(costs, processors)
        np.testing.assert_allclose(plan.loads.sum(1), costs.sum(1))
        if plan.assignment is not None:
            np.testing.assert_allclose(plan.loads, loads_of(plan.assignment, costs, processors))
    oracle = make_scheduler("oracle").schedule(costs, processors)
    for f, c in enumerate(costs):
        np.testing.assert_array_equal(oracle.assignment[f], lpt_assignment(c, processors))


def test_balance_ratio_is_mean_over_max():
    loads = np.array([[4.0, 2.0, 0.0], [3.0, 3.0, 3.0]])
    assert balance_ratio(loads[:1]) == pytest.approx(2 / 4)
    assert balance_ratio(loads) == pytest.approx((2 + 3) / (4 + 3))  # aggregated over frames
    plan = make_scheduler("static").schedule(np.array([[4.0, 2.0, 0.0]]), 3)
    assert plan.balance[0] == pytest.approx(0.5)
    assert balance_ratio(np.zeros((2, 3))) == 1.0  # no work: nothing is imbalanced


def test_static_split_is_contiguous_and_equal():
    assignment = static_assignment(10, 4)
    assert (np.diff(assignment) >= 0).all()  # contiguous blocks in index order
    sizes = np.bincount(assignment, minlength=4)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 10
    assert sorted(static_assignment(3, 8)) == sorted(set(static_assignment(3, 8)))  # fewer units: one per PE
    np.testing.assert_array_equal(make_scheduler("round-robin").schedule(np.ones((1, 5)), 2).assignment[0],
                                  [0, 1, 0, 1, 0])


def test_lpt_spreads_zero_cost_units():
    np.testing.assert_array_equal(np.bincount(lpt_assignment(np.zeros(6), 3), minlength=3), [2, 2, 2])
    counts = np.bincount(lpt_assignment(np.array([5.0, 0, 0, 0, 0, 0]), 3), minlength=3)
    assert counts[0] == 1 and counts.max() == 3  # the idle PEs share the zeros instead of one taking all


def test_kwbs_profiles_on_keyframes_and_applies_the_mapping_from_the_next_frame():
    rng = np.random.default_rng(0)
    costs = rng.integers(0, 100, (10, 12)).astype(np.float64)
    plan = make_scheduler("kwbs", every=4).schedule(costs, 3)
    np.testing.assert_array_equal(plan.assignment[0], static_assignment(12, 3))  # nothing measured yet
    for f in range(1, 10):
        profiled = (f - 1) // 4 * 4  # the latest keyframe before f (frames 0, 4, 8)
        np.testing.assert_array_equal(plan.assignment[f], lpt_assignment(costs[profiled], 3))
    marked = np.zeros(10, bool)
    marked[[0, 6]] = True  # the trace's own keyframes win over `every`
    plan = make_scheduler("kwbs", every=4).schedule(costs, 3, marked)
    np.testing.assert_array_equal(plan.assignment[5], lpt_assignment(costs[0], 3))
    np.testing.assert_array_equal(plan.assignment[7], lpt_assignment(costs[6], 3))


def test_adaptive_kwbs_reprofiles_when_balance_drops():
    costs = np.zeros((6, 4))
    costs[:3] = [10, 1, 10, 1]  # profiled at frame 0: units {0, 1} on PE 0, {2, 3} on PE 1
    costs[3:] = [10, 10, 1, 1]  # the work moves: that mapping now loads PE 0 with 20 and PE 1 with 2
    keyed = make_scheduler("kwbs", every=100).schedule(costs, 2)
    adaptive = make_scheduler("adaptive-kwbs", every=100, threshold=0.9, steal=False).schedule(costs, 2)  # the rule
    assert keyed.makespan[5] == 20 and adaptive.makespan[5] == 11
    np.testing.assert_array_equal(adaptive.assignment[4], lpt_assignment(costs[3], 2))
    assert adaptive.remapped.sum() >= keyed.remapped.sum()


def test_adaptive_kwbs_does_not_move_units_when_moving_costs_more_than_it_gains():
    costs = np.zeros((6, 4))
    costs[:3] = [10, 1, 10, 1]
    costs[3:] = [10, 10, 1, 1]
    keyed = make_scheduler("kwbs", every=100).schedule(costs, 2)
    scheduler = make_scheduler("adaptive-kwbs", every=100, threshold=0.9, steal=False)
    cheap = scheduler.schedule(costs, 2, move_costs=np.full(4, 0.1))
    dear = scheduler.schedule(costs, 2, move_costs=np.full(4, 100.0))
    assert cheap.remapped.sum() > keyed.remapped.sum()  # the gain (9 cycles) pays for moving (2 x 0.1 / 2 PEs)
    np.testing.assert_array_equal(dear.assignment, keyed.assignment)  # it does not


# --- work stealing (adaptive-kwbs) ----------------------------------------------------------------------

STALE_OWNER = np.array([0, 0, 1, 1])  # mapped when units 0 and 2 were the heavy ones
STALE_PREDICTED = np.array([10.0, 1, 10, 1])
STALE_COSTS = np.array([10.0, 10, 1, 1])  # now units 0 and 1 are: PE 0 carries 20, PE 1 carries 2


@pytest.mark.parametrize(("move", "loads", "steals"), [
    # PE 1 runs units 2 and 3 (1 cycle each) and is idle at cycle 2; PE 0 is predicted to have
    # 1 (queued unit 1) + 8 (unit 0, predicted 10, started at 0) = 9 cycles left, so unit 1 is stolen
    # when 9 > move + 1: PE 1 ends at 2 + move + 10, PE 0 ends unit 0 at 10 and finds nothing to steal
    (0.0, [10, 12], 1),
    (3.0, [10, 15], 1),
    (7.9, [10, 19.9], 1),
    (8.0, [20, 2], 0),  # 9 > 8 + 1 fails: stealing would not end before PE 0 would
])
def test_stealing_a_stale_mappings_queue_tail_matches_hand_count(move, loads, steals):
    finish, ran_on, stolen = run_with_stealing(STALE_OWNER, STALE_COSTS, STALE_PREDICTED, np.full(4, move), 2)
    np.testing.assert_allclose(finish, loads)
    assert stolen == steals
    np.testing.assert_array_equal(ran_on, [0, 1, 1, 1] if steals else STALE_OWNER)


def test_units_predicted_empty_are_not_stolen():
    # unit 1 was empty last frame: its owner runs it, even though it now carries 10 cycles
    finish, ran_on, stolen = run_with_stealing(STALE_OWNER, STALE_COSTS, np.array([10.0, 0, 10, 1]), np.zeros(4), 2)
    assert stolen == 0
    np.testing.assert_allclose(finish, [20, 2])
    np.testing.assert_array_equal(ran_on, STALE_OWNER)


stealing_cases = st.tuples(
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40), st.integers(0, 3)), min_size=1, max_size=12),
    st.integers(1, 4), st.integers(0, 30))


def _stealing_case(case):
    rows, processors, move = case
    costs, predicted, owner = (np.array(column, dtype=np.float64) for column in zip(*rows, strict=True))
    return costs, predicted, owner.astype(np.int64) % processors, processors, move


@settings(max_examples=80, deadline=None)
@given(stealing_cases)
def test_stealing_conserves_work_and_never_hurts_with_exact_predictions(case):
    costs, predicted, owner, processors, move = _stealing_case(case)
    plain = np.bincount(owner, weights=costs, minlength=processors)
    move_costs = np.full(costs.shape[0], float(move))
    for prediction in (predicted, costs):
        finish, ran_on, stolen = run_with_stealing(owner, costs, prediction, move_costs, processors)
        # every unit runs once, on one PE; the loads are its work plus the copying of what it stole
        assert stolen == (ran_on != owner).sum()
        np.testing.assert_allclose(finish, np.bincount(ran_on, weights=costs, minlength=processors)
                                   + move * np.bincount(ran_on[ran_on != owner], minlength=processors))
        assert finish.sum() == pytest.approx(costs.sum() + stolen * move)
        bound = max(costs.sum() / processors, costs.max())
        assert finish.max() >= bound - TOLERANCE
    # a steal is taken only when the thief ends before the victim would have: exact predictions never lose
    exact = run_with_stealing(owner, costs, costs, move_costs, processors)[0]
    assert exact.max() <= plain.max() + TOLERANCE
    huge = run_with_stealing(owner, costs, predicted, np.full(costs.shape[0], 1e9), processors)
    assert huge[2] == 0
    np.testing.assert_allclose(huge[0], plain)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 60), min_size=6, max_size=6), min_size=1, max_size=8), st.integers(1, 4),
       st.integers(0, 20))
def test_adaptive_kwbs_loads_include_steals_and_stay_above_the_bound(rows, processors, move):
    costs = np.array(rows, dtype=np.float64)
    plan = make_scheduler("adaptive-kwbs", every=3).schedule(costs, processors, move_costs=np.full(6, float(move)))
    np.testing.assert_allclose(plan.loads.sum(1), costs.sum(1) + plan.steals * move)
    ideal = make_scheduler("ideal").schedule(costs, processors).makespan
    assert (plan.makespan >= ideal - TOLERANCE).all()
    # remaps count the units whose PE changed between frames, apart from those stolen in the frame before
    for f in range(1, costs.shape[0]):
        assert plan.moved[f] <= (plan.assignment[f] != plan.assignment[f - 1]).sum() + plan.steals[f]


def test_adaptive_kwbs_without_worthwhile_steals_is_the_reprofiling_rule_alone():
    rng = np.random.default_rng(1)
    costs = rng.integers(0, 100, (12, 10)).astype(np.float64)
    keyframes = np.arange(12) % 5 == 0
    for move in (1e9, 0.5):
        stealing = make_scheduler("adaptive-kwbs").schedule(costs, 3, keyframes, np.full(10, move))
        alone = make_scheduler("adaptive-kwbs", steal=False).schedule(costs, 3, keyframes, np.full(10, move))
        if move == 1e9:  # nothing is worth its copying: the same mapping, loads and remaps
            assert stealing.steals.sum() == 0
            np.testing.assert_allclose(stealing.loads, alone.loads)
            np.testing.assert_array_equal(stealing.assignment, alone.assignment)
            np.testing.assert_array_equal(stealing.moved, alone.moved)
        else:  # cheap copying: units are stolen and the frames end sooner overall
            assert stealing.steals.sum() > 0
            assert stealing.makespan.sum() < alone.makespan.sum()
    with pytest.raises(ScheduleError, match="move_costs must be 10 non-negative"):
        make_scheduler("adaptive-kwbs").schedule(costs, 3, keyframes, np.full(9, 1.0))


def test_registry_rejects_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="registered twice"):
        register_scheduler("kwbs")(type("Again", (Scheduler,), {}))
    with pytest.raises(ScheduleError, match="unknown schedule 'fifo'; choose one of: static"):
        make_scheduler("fifo")
    with pytest.raises(ScheduleError, match="does not take"):
        make_scheduler("static", every=3)
    with pytest.raises(ScheduleError, match="positive integer"):
        make_scheduler("kwbs", every=0)
