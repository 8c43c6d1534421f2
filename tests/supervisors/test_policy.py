"""The pure parts: restart plans, intensity window, backoff, exit classification."""

from __future__ import annotations

import math
import signal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisors import Backoff, ExitKind, Intensity, Restart, Strategy, needs_restart, plan_exit
from supervisors._exit import exit_from_returncode

kinds = st.sampled_from(list(ExitKind))
restart_types = st.sampled_from(list(Restart))
strategies = st.sampled_from(list(Strategy))


@st.composite
def situations(draw):
    n = draw(st.integers(1, 8))
    order = [f"c{i}" for i in range(n)]
    restarts = {c: draw(restart_types) for c in order}
    child = draw(st.sampled_from(order))
    running = {c for c in order if c != child and draw(st.booleans())}
    return order, running, restarts, child


def test_restart_types_follow_otp():
    assert [needs_restart(Restart.PERMANENT, k) for k in ExitKind] == [True, True, True]
    assert [needs_restart(Restart.TRANSIENT, k) for k in ExitKind] == [False, False, True]
    assert [needs_restart(Restart.TEMPORARY, k) for k in ExitKind] == [False, False, False]


@given(strategies, situations(), kinds)
def test_plan_invariants(strategy, situation, kind):
    order, running, restarts, child = situation
    plan = plan_exit(strategy, order, running, restarts, child, kind)
    # Only running siblings are stopped, in reverse start order.
    assert set(plan.stop) <= running
    assert child not in plan.stop
    positions = [order.index(c) for c in plan.stop]
    assert positions == sorted(positions, reverse=True)
    # Starts are in start order and never include temporary children.
    starts = [order.index(c) for c in plan.start]
    assert starts == sorted(starts)
    assert all(restarts[c] is not Restart.TEMPORARY for c in plan.start)
    # The child restarts exactly when its restart type says so.
    assert (child in plan.start) == needs_restart(restarts[child], kind)
    # Nothing is both removed and started; every stopped temporary is removed.
    assert not set(plan.remove) & set(plan.start)
    assert {c for c in plan.stop if restarts[c] is Restart.TEMPORARY} <= set(plan.remove)


@given(situations(), kinds)
def test_one_for_one_never_touches_siblings(situation, kind):
    order, running, restarts, child = situation
    for strategy in (Strategy.ONE_FOR_ONE, Strategy.POOL):
        plan = plan_exit(strategy, order, running, restarts, child, kind)
        assert plan.stop == ()
        assert set(plan.start) <= {child}


@given(situations())
def test_one_for_all_restarts_every_non_temporary_child(situation):
    order, running, restarts, child = situation
    restarts[child] = Restart.PERMANENT
    plan = plan_exit(Strategy.ONE_FOR_ALL, order, running, restarts, child, ExitKind.ABNORMAL)
    assert set(plan.stop) == running
    assert plan.start == tuple(c for c in order if restarts[c] is not Restart.TEMPORARY)


@given(situations())
def test_rest_for_one_only_touches_later_children(situation):
    order, running, restarts, child = situation
    restarts[child] = Restart.PERMANENT
    plan = plan_exit(Strategy.REST_FOR_ONE, order, running, restarts, child, ExitKind.ABNORMAL)
    later = order[order.index(child) + 1 :]
    assert set(plan.stop) == running & set(later)
    assert plan.start[0] == child
    assert set(plan.start[1:]) <= set(later)


def test_temporary_child_exit_is_dropped_without_restart():
    plan = plan_exit(Strategy.ONE_FOR_ALL, ["a", "b"], {"a"}, {"a": Restart.PERMANENT, "b": Restart.TEMPORARY}, "b", ExitKind.ABNORMAL)
    assert plan == ((), (), ("b",))


@given(
    st.integers(0, 10),
    st.floats(0.1, 1000),
    st.lists(st.floats(0, 10_000), max_size=30).map(sorted),
)
def test_intensity_counts_only_the_window(max_restarts, within, times):
    intensity = Intensity(max_restarts=max_restarts, within=within)
    history: tuple[float, ...] = ()
    for i, now in enumerate(times):
        history, exceeded = intensity.record(history, now)
        in_window = [t for t in times[: i + 1] if now - t < within]
        assert len(history) == len(in_window)
        assert exceeded == (len(in_window) > max_restarts)


def test_infinite_window_counts_a_lifetime():
    intensity = Intensity(max_restarts=5, within=math.inf)
    history: tuple[float, ...] = ()
    results = []
    for now in range(0, 6000, 1000):
        history, exceeded = intensity.record(history, float(now))
        results.append(exceeded)
    assert results == [False] * 5 + [True]


@pytest.mark.parametrize("bad", [dict(max_restarts=-1), dict(within=0), dict(within=-5)])
def test_intensity_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        Intensity(**bad)


@given(
    st.floats(0.001, 5),
    st.floats(1, 4),
    st.floats(0, 1),
    st.integers(0, 200),
    st.floats(0, 0.999999),
)
def test_backoff_grows_caps_and_jitters_within_bounds(initial, multiplier, jitter, step, rand):
    backoff = Backoff(initial=initial, max=initial * 100, multiplier=multiplier, jitter=jitter)
    base = min(backoff.max, initial * multiplier**min(step, 128))
    delay = backoff.delay(step, rand)
    assert base <= delay <= base * (1 + jitter) + 1e-9
    assert backoff.delay(step + 1, rand) >= delay - 1e-9  # never shrinks as steps grow


def test_backoff_resets_after_a_long_enough_uptime():
    backoff = Backoff(initial=1, max=100, multiplier=2, jitter=0, reset_after=10)
    step = 0
    delays = []
    for uptime in (0.1, 0.1, 0.1, 0.1):
        delay, step = backoff.schedule(step, uptime, 0.5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8]
    delay, step = backoff.schedule(step, 10.0, 0.5)
    assert (delay, step) == (1, 1)


def test_default_settings_escalate_a_crash_loop():
    # With backoff, a window shorter than the backoff delays of max_restarts+1
    # quick restarts would let a crash loop run forever without escalating.
    intensity, backoff = Intensity(), Backoff()
    assert backoff.worst_case(intensity.max_restarts + 1) < intensity.within


@pytest.mark.parametrize("bad", [dict(initial=-1), dict(initial=5, max=1), dict(multiplier=0.5), dict(jitter=2)])
def test_backoff_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        Backoff(**bad)


def test_returncode_classification():
    assert exit_from_returncode(0, stop_requested=False, at=0).kind is ExitKind.NORMAL
    assert exit_from_returncode(3, stop_requested=False, at=0).kind is ExitKind.ABNORMAL
    killed = exit_from_returncode(-signal.SIGKILL, stop_requested=False, at=0)
    assert killed.kind is ExitKind.ABNORMAL and "possible OOM" in killed.reason
    assert exit_from_returncode(-signal.SIGKILL, stop_requested=True, at=0).kind is ExitKind.SHUTDOWN
    reported = exit_from_returncode(1, stop_requested=False, at=0, failure=("ValueError", "bad", "tb"))
    assert (reported.kind, reported.reason, reported.error_type) == (ExitKind.ABNORMAL, "ValueError: bad", "ValueError")


def test_an_exception_group_of_one_is_reported_as_its_error():
    from supervisors._exit import ExitKind, exit_from_exception

    try:
        raise ExceptionGroup("Exceptions from Trio nursery", [OSError(98, "address already in use")])
    except ExceptionGroup as group:
        exit = exit_from_exception(group, at=1.0)
    assert exit.kind is ExitKind.ABNORMAL
    assert exit.reason == "OSError: [Errno 98] address already in use" and exit.error_type == "OSError"
    assert "ExceptionGroup" in exit.traceback  # the whole story stays in the traceback
    both = exit_from_exception(ExceptionGroup("two", [ValueError("a"), KeyError("b")]), at=1.0)
    assert both.error_type == "ExceptionGroup"
