"""multiprocessing.Pool over actors: map family, apply, AsyncResult, imap, errors, initializer, lifetime."""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.pool import RemoteTraceback

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actorlib
from actorlib.exceptions import ActorDiedError
from actorlib.util.multiprocessing import AsyncResult, Pool

from ..integration.conftest import descendants, wait_gone

pytestmark = pytest.mark.usefixtures("cluster")


def square(x):
    return x * x


def add(a, b=0):
    return a + b


def pid_of(_=None):
    return os.getpid()


def gated(value, gate):
    actorlib.get(gate.wait.remote())
    return value


def fail_on(x, bad):
    if x == bad:
        raise ValueError(f"bad {x}")
    return x


def count_init(tag):
    os.environ["POOL_INIT_COUNT"] = str(int(os.environ.get("POOL_INIT_COUNT", "0")) + 1)
    os.environ["POOL_INIT_TAG"] = tag


def init_state(_=None):
    return os.getpid(), os.environ.get("POOL_INIT_COUNT"), os.environ.get("POOL_INIT_TAG")


def broken_init():
    raise RuntimeError("initializer failed")


@pytest.fixture(scope="module")
def pool(cluster):
    shared = Pool(2)
    yield shared
    shared.terminate()


def pids_of(pool, n=8):
    return set(pool.map(pid_of, range(n), chunksize=1))


def test_map_keeps_input_order(pool):
    assert pool.map(square, range(20)) == [x * x for x in range(20)]
    assert pool.map(square, range(7), chunksize=3) == [x * x for x in range(7)]
    assert pool.map(square, []) == []
    assert pool.map(square, iter(range(5))) == [0, 1, 4, 9, 16]


@settings(max_examples=15, deadline=None)
@given(items=st.lists(st.integers(), max_size=30), chunksize=st.one_of(st.none(), st.integers(1, 8)))
def test_map_equals_the_builtin_map(pool, items, chunksize):
    assert pool.map(square, items, chunksize) == list(map(square, items))


def test_calls_run_in_the_pools_processes(pool):
    pids = pids_of(pool)
    assert os.getpid() not in pids and 1 <= len(pids) <= 2


def test_starmap_and_apply(pool):
    assert pool.starmap(add, [(1, 2), (3, 4)]) == [3, 7]
    assert pool.starmap_async(add, [(5, 5)]).get(30) == [10]
    assert pool.apply(add, (1,), {"b": 41}) == 42
    assert pool.apply(add, (1,), kwargs={"b": 1}) == 2  # Ray's keyword
    result = pool.apply_async(add, (2, 3))
    assert isinstance(result, AsyncResult)
    assert result.get(timeout=30) == 5 and result.ready() and result.successful()


def test_exceptions_re_raise_as_the_original_with_the_remote_traceback(pool):
    with pytest.raises(ValueError, match="bad 3") as caught:
        pool.starmap(fail_on, [(x, 3) for x in range(5)], chunksize=2)
    assert type(caught.value) is ValueError
    assert isinstance(caught.value.__cause__, RemoteTraceback)
    assert "fail_on" in str(caught.value.__cause__)
    with pytest.raises(ValueError):
        pool.apply(fail_on, (1, 1))


def raise_unpicklable(x):
    if x == 1:
        error = ValueError("holds a lock")
        error.lock = threading.Lock()
        raise error
    return x


def test_an_unpicklable_exception_fails_only_its_item(pool):
    it = pool.imap(raise_unpicklable, [0, 1, 2], chunksize=3)
    assert next(it) == 0
    with pytest.raises(RuntimeError, match="ValueError: holds a lock"):
        next(it)
    assert next(it) == 2


def test_async_result_timeout_wait_ready_successful(pool, gate):
    result = pool.apply_async(gated, ("done", gate))
    with pytest.raises(multiprocessing.TimeoutError):
        result.get(timeout=0.05)
    result.wait(timeout=0.01)
    assert not result.ready()
    with pytest.raises(ValueError, match="not ready"):
        result.successful()
    actorlib.get(gate.open.remote())
    assert result.get(timeout=30) == "done"
    assert result.successful()


def test_failed_async_result(pool):
    result = pool.starmap_async(fail_on, [(1, 1), (2, 2)])
    result.wait(30)
    assert result.ready() and not result.successful()
    with pytest.raises(ValueError, match="bad 1"):
        result.get()


def test_callbacks_run_before_the_result_is_ready(pool):
    seen = []
    result = pool.map_async(square, [1, 2, 3], callback=seen.append, error_callback=lambda e: seen.append(("error", e)))
    assert result.get(timeout=30) == [1, 4, 9]
    assert seen == [[1, 4, 9]]
    errors = []
    failing = pool.starmap_async(fail_on, [(0, 9), (9, 9)], callback=errors.append, error_callback=errors.append)
    failing.wait(30)
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    single = []
    assert pool.apply_async(square, (4,), callback=single.append).get(30) == 16
    assert single == [16]


def test_imap_yields_in_input_order(pool):
    items = pool.imap(square, range(10), chunksize=3)
    assert list(items) == [x * x for x in range(10)]


def test_imap_waits_for_the_first_and_times_out(pool, gate):
    it = pool.imap(_gated_pair, [(0, gate), (1, None), (2, None)])
    with pytest.raises(multiprocessing.TimeoutError):
        it.next(timeout=0.05)
    actorlib.get(gate.open.remote())
    assert list(it) == [0, 1, 2]


def _gated_pair(pair):
    value, gate = pair
    if gate is not None:
        actorlib.get(gate.wait.remote())
    return value


def test_imap_unordered_yields_every_result_finished_first_first(pool, gate):
    it = pool.imap_unordered(_gated_pair, [(0, gate)] + [(i, None) for i in range(1, 6)])
    first = [next(it) for _ in range(5)]
    assert sorted(first) == [1, 2, 3, 4, 5]  # the gated one cannot be among them
    actorlib.get(gate.open.remote())
    assert list(it) == [0]


def test_imap_unordered_yields_all_results_of_a_generator(pool):
    squares = pool.imap_unordered(square, (x for x in range(50)), chunksize=4)
    assert sorted(squares) == sorted(x * x for x in range(50))


def test_imap_raises_at_the_failing_item_and_goes_on(pool):
    it = pool.imap(_fail_on_2, range(4))
    assert next(it) == 0 and next(it) == 1
    with pytest.raises(ValueError, match="bad 2"):
        next(it)
    assert list(it) == [3]


def _fail_on_2(x):
    return fail_on(x, 2)


def test_bad_chunksize(pool):
    with pytest.raises(ValueError):
        pool.map(square, [1], chunksize=0)
    with pytest.raises(ValueError):
        pool.imap(square, [1], chunksize=0)


def test_initializer_runs_once_in_each_process(cluster):
    with Pool(2, initializer=count_init, initargs=("hello",)) as pool:
        states = pool.map(init_state, range(12), chunksize=1)
    assert {count for _, count, _ in states} == {"1"}
    assert {tag for _, _, tag in states} == {"hello"}
    assert 1 <= len({pid for pid, _, _ in states}) <= 2


def test_a_failing_initializer_fails_the_constructor_and_leaves_no_process(cluster):
    before = set(descendants())
    with pytest.raises(ActorDiedError, match="initializer failed"):
        Pool(2, initializer=broken_init)
    assert wait_gone([pid for pid in descendants() if pid not in before]) == []


def test_maxtasksperchild_replaces_processes(cluster):
    pool = Pool(1, maxtasksperchild=1)
    pids = pool.map(pid_of, range(3), chunksize=1)
    assert len(set(pids)) == 3
    assert wait_gone(pids[:2]) == []  # the retired processes stop once their work is done
    pool.terminate()
    assert wait_gone(pids) == []


def test_close_then_join_waits_for_the_work_and_stops_the_processes(cluster):
    pool = Pool(2)
    pids = pids_of(pool)
    with pytest.raises(ValueError, match="still running"):
        pool.join()
    pending = pool.map_async(square, range(40), chunksize=1)
    pool.close()
    with pytest.raises(ValueError, match="not running"):
        pool.apply(square, (1,))
    pool.join()
    assert pending.wait(30) is None and pending.get(0) == [x * x for x in range(40)]
    assert wait_gone(pids) == []


def test_terminate_stops_the_processes_and_fails_unfinished_work(cluster, gate):
    pool = Pool(2)
    pids = pids_of(pool)
    pending = pool.apply_async(gated, (1, gate))
    pool.terminate()
    assert wait_gone(pids) == []
    with pytest.raises(ActorDiedError):
        pending.get(timeout=30)
    pool.join()  # returns at once after terminate


def test_callbacks_of_work_unfinished_at_terminate_never_run(cluster, gate):
    # As in multiprocessing. joblib's backend, after a failed call, starts a new pool for the
    # same Parallel: the old pool's callbacks must not report into it.
    pool = Pool(2)
    called = []
    pending = pool.apply_async(gated, (1, gate), callback=called.append, error_callback=called.append)
    pool.terminate()
    pending.wait(30)
    assert pending.ready() and not pending.successful() and called == []


def test_context_manager_terminates(cluster):
    with Pool(2) as pool:
        pids = pids_of(pool)
    assert wait_gone(pids) == []
    with pytest.raises(ValueError):
        pool.map(square, [1])


def test_bad_pool_sizes(cluster):
    with pytest.raises(ValueError, match="only 2 CPUs"):
        Pool(3)
    with pytest.raises(ValueError):
        Pool(0)
    with pytest.raises(ValueError):
        Pool(1, maxtasksperchild=0)
    assert len(pids_of(Pool(), 1)) == 1  # the default: the cluster's CPUs
