"""ActorPool on a real cluster: ordering, the idle set, timeouts, errors."""

from __future__ import annotations

import os

import pytest

import actorlib
from actorlib.exceptions import ActorDiedError, GetTimeoutError
from actorlib.util import ActorPool

from ..integration.conftest import poll

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
class Worker:
    def double(self, v):
        return 2 * v

    def gated(self, v, gate):
        """Returns ``2 * v`` once the gate is open."""
        actorlib.get(gate.wait.remote())
        return 2 * v

    def fail(self, v):
        raise KeyError(v)

    @actorlib.method(num_returns=2)
    def pair(self, v):
        return v, -v

    def pid(self):
        return os.getpid()


def double(actor, v):
    return actor.double.remote(v)


def workers(n=2):
    return [Worker.options(num_cpus=0).remote() for _ in range(n)]


def test_map_returns_results_in_input_order():
    pool = ActorPool(workers())
    assert list(pool.map(double, range(10))) == [2 * v for v in range(10)]
    assert not pool.has_next()


def test_map_keeps_input_order_when_an_early_call_finishes_last(gate):
    pool = ActorPool(workers())
    results = pool.map(lambda a, v: a.gated.remote(v, gate) if v == 0 else a.double.remote(v), [0, 1, 2, 3])
    poll(lambda: actorlib.get(gate.waiters.remote()) == 1)
    assert not pool.has_free()
    actorlib.get(gate.open.remote())
    assert list(results) == [0, 2, 4, 6]


def test_map_unordered_yields_finished_results_first(gate):
    pool = ActorPool(workers())
    results = pool.map_unordered(lambda a, v: a.gated.remote(v, gate) if v == 0 else a.double.remote(v), [0, 1, 2, 3])
    first_three = [next(results) for _ in range(3)]  # the gated call cannot finish yet
    assert sorted(first_three) == [2, 4, 6]
    actorlib.get(gate.open.remote())
    assert list(results) == [0]


def test_submit_and_get_next_in_submission_order():
    pool = ActorPool(workers(1))
    for v in (1, 2, 3):
        pool.submit(double, v)  # one actor: two wait in the pool
    assert pool.has_next() and not pool.has_free()
    assert [pool.get_next(), pool.get_next(), pool.get_next()] == [2, 4, 6]
    assert not pool.has_next() and pool.has_free()
    with pytest.raises(StopIteration):
        pool.get_next()
    with pytest.raises(StopIteration):
        pool.get_next_unordered()


def test_get_next_timeout_raises_timeout_error_and_keeps_the_result(gate):
    pool = ActorPool(workers(1))
    pool.submit(lambda a, v: a.gated.remote(v, gate), 5)
    with pytest.raises(TimeoutError) as caught:
        pool.get_next(timeout=0.05)
    assert not isinstance(caught.value, GetTimeoutError)
    assert pool.has_next()
    actorlib.get(gate.open.remote())
    assert pool.get_next(timeout=30) == 10


def test_get_next_ignore_if_timedout_drops_the_call(gate):
    pool = ActorPool(workers(2))
    pool.submit(lambda a, v: a.gated.remote(v, gate), 1)
    pool.submit(double, 2)
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)
    assert pool.get_next() == 4
    assert not pool.has_next()


def test_get_next_unordered_timeout(gate):
    pool = ActorPool(workers(1))
    pool.submit(lambda a, v: a.gated.remote(v, gate), 1)
    with pytest.raises(TimeoutError):
        pool.get_next_unordered(timeout=0.05)
    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next_unordered(timeout=0, ignore_if_timedout=True)
    assert not pool.has_next() and pool.has_free()


def test_get_next_after_get_next_unordered_is_refused(gate):
    pool = ActorPool(workers(2))
    pool.submit(lambda a, v: a.gated.remote(v, gate), 1)
    pool.submit(double, 2)
    assert pool.get_next_unordered() == 4  # the first is held at the gate
    with pytest.raises(ValueError, match="get_next_unordered"):
        pool.get_next()
    actorlib.get(gate.open.remote())
    assert pool.get_next_unordered() == 2


def test_errors_propagate_and_the_pool_goes_on():
    pool = ActorPool(workers(1))
    pool.submit(lambda a, v: a.fail.remote(v), "k")
    pool.submit(double, 4)
    with pytest.raises(KeyError):
        pool.get_next()
    assert pool.get_next() == 8
    assert pool.has_free()


def test_map_raises_a_calls_error_at_its_position():
    pool = ActorPool(workers(2))
    results = pool.map(lambda a, v: a.fail.remote(v) if v == 1 else a.double.remote(v), [0, 1, 2])
    assert next(results) == 0
    with pytest.raises(KeyError):
        next(results)
    assert list(results) == []  # a generator that raised is finished (as in Ray) ...
    assert pool.get_next() == 4  # ... but the later results are still in the pool


def test_map_drops_results_not_taken_before():
    pool = ActorPool(workers(2))
    pool.submit(double, 100)
    pool.submit(lambda a, v: a.fail.remote(v), 101)
    assert list(pool.map(double, [1, 2])) == [2, 4]


def test_num_returns_2_gives_a_list():
    pool = ActorPool(workers(1))
    pool.submit(lambda a, v: a.pair.remote(v), 3)
    assert pool.get_next() == [3, -3]


def test_pop_idle_and_push():
    a1, a2 = workers(2)
    pool = ActorPool([a1])
    pool.submit(double, 1)
    assert pool.pop_idle() is None
    assert pool.get_next() == 2
    assert pool.pop_idle() == a1
    assert pool.pop_idle() is None
    pool.push(a1)
    pool.push(a2)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(a1)
    assert sorted(pool.map(double, [1, 2])) == [2, 4]


def test_push_starts_a_waiting_value():
    a1, a2 = workers(2)
    pool = ActorPool([a1])
    pool.submit(double, 1)
    pool.submit(double, 2)  # waits in the pool: no idle actor
    pool.push(a2)  # starts it at once
    assert not pool.has_free()
    assert [pool.get_next(), pool.get_next()] == [2, 4]


def test_a_dead_actor_leaves_the_pool():
    a1, a2 = workers(2)
    pool = ActorPool([a1, a2])
    pool.submit(double, 1)  # on a2 (the last idle actor goes first)
    actorlib.kill(a2)
    with pytest.raises(ActorDiedError):
        pool.get_next()
    assert pool.pop_idle() == a1
    assert pool.pop_idle() is None


def test_fn_returning_something_else_is_a_type_error_and_keeps_the_actor():
    pool = ActorPool(workers(1))
    with pytest.raises(TypeError, match="ObjectRef"):
        pool.submit(lambda a, v: v, 1)
    assert pool.has_free() and not pool.has_next()


def test_calls_run_on_the_pools_actors():
    actors = workers(2)
    pids = {actorlib.get(a.pid.remote()) for a in actors}
    pool = ActorPool(actors)
    assert set(pool.map(lambda a, v: a.pid.remote(), range(6))) <= pids
