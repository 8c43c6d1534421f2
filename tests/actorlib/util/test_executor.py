"""ActorlibExecutor on a real cluster: futures, wait/as_completed, map, max_workers, options, shutdown."""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading

import pytest

import actorlib
from actorlib.exceptions import InfeasibleResourcesError, TaskError
from actorlib.util import ActorlibExecutor, Executor, RayExecutor

pytestmark = pytest.mark.usefixtures("cluster")


def square(x):
    return x * x


def gated(value, gate):
    actorlib.get(gate.wait.remote())
    return value


def boom(message):
    raise LookupError(message)


def where():
    return os.getpid()


def test_the_names_are_one_class():
    assert RayExecutor is ActorlibExecutor and Executor is ActorlibExecutor
    assert issubclass(ActorlibExecutor, cf.Executor)


def test_submit_returns_a_concurrent_future():
    with ActorlibExecutor() as ex:
        future = ex.submit(square, 7)
        assert isinstance(future, cf.Future)
        assert future.result(timeout=30) == 49
        assert ex.submit(lambda *a, **k: (a, k), 1, key="v").result(30) == ((1,), {"key": "v"})
        assert future.done() and not future.cancelled()


def test_calls_run_as_tasks_in_other_processes():
    with ActorlibExecutor() as ex:
        assert ex.submit(where).result(30) != os.getpid()


def test_exceptions_become_the_futures_exception():
    with ActorlibExecutor() as ex:
        future = ex.submit(boom, "nope")
        error = future.exception(timeout=30)
        assert isinstance(error, LookupError) and isinstance(error, TaskError)
        with pytest.raises(LookupError, match="nope"):
            future.result()


def test_wait_and_as_completed(gate):
    with ActorlibExecutor() as ex:
        held = ex.submit(gated, "late", gate)
        quick = [ex.submit(square, i) for i in range(5)]
        done, not_done = cf.wait([held, *quick], timeout=30, return_when=cf.FIRST_COMPLETED)
        assert held not in done and done
        done, not_done = cf.wait(quick, timeout=30)
        assert not not_done
        done, not_done = cf.wait([held], timeout=0.05)
        assert not_done == {held}
        actorlib.get(gate.open.remote())
        order = [f.result() for f in cf.as_completed([held, *quick], timeout=30)]
        assert sorted(map(str, order)) == sorted(map(str, [0, 1, 4, 9, 16, "late"]))


def test_as_completed_yields_finished_futures_first(gate):
    with ActorlibExecutor() as ex:
        held = ex.submit(gated, "late", gate)
        quick = [ex.submit(square, i) for i in range(3)]
        it = cf.as_completed([held, *quick], timeout=30)
        first = [next(it) for _ in range(3)]
        assert set(first) == set(quick)
        actorlib.get(gate.open.remote())
        assert next(it) is held


def test_map_in_order_with_chunks_and_several_iterables():
    with ActorlibExecutor() as ex:
        assert list(ex.map(square, range(10))) == [x * x for x in range(10)]
        assert list(ex.map(pow, [2, 3, 4], [3, 2, 1])) == [8, 9, 4]
        assert list(ex.map(square, range(11), chunksize=4)) == [x * x for x in range(11)]
        with pytest.raises(ValueError):
            ex.map(square, [1], chunksize=0)


def test_map_timeout_and_errors(gate):
    with ActorlibExecutor() as ex:
        results = ex.map(gated, ["x"], [gate], timeout=0.05)
        with pytest.raises(TimeoutError):
            next(results)
        actorlib.get(gate.open.remote())
        failing = ex.map(boom, ["a"])
        with pytest.raises(LookupError):
            next(failing)


def test_max_workers_queues_the_rest_and_queued_futures_can_be_cancelled(gate):
    ex = ActorlibExecutor(max_workers=1)
    held = ex.submit(gated, 1, gate)
    queued = ex.submit(square, 2)
    also_queued = ex.submit(square, 3)
    assert held.running()
    assert not queued.running() and not queued.done()
    assert also_queued.cancel()
    actorlib.get(gate.open.remote())
    assert held.result(30) == 1 and queued.result(30) == 4
    assert also_queued.cancelled()
    ex.shutdown()


def test_shutdown_cancel_futures_cancels_only_queued_calls(gate):
    ex = ActorlibExecutor(max_workers=1)
    running = ex.submit(gated, "ran", gate)
    queued = [ex.submit(square, i) for i in range(3)]
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(square, 1)
    actorlib.get(gate.open.remote())
    assert running.result(30) == "ran"
    ex.shutdown()  # idempotent


def test_shutdown_waits_for_running_calls(gate):
    ex = ActorlibExecutor()
    future = ex.submit(gated, "ok", gate)
    opener = threading.Thread(target=lambda: actorlib.get(gate.open.remote()))
    opener.start()
    ex.shutdown(wait=True)
    assert future.done() and future.result() == "ok"
    opener.join()
    assert actorlib.is_initialized()  # it did not start the runtime, so it leaves it alone


def test_done_callbacks_run_off_the_runtime_thread_and_may_use_actorlib():
    seen = []
    finished = threading.Event()

    def callback(future):
        seen.append((threading.current_thread().name, actorlib.get(actorlib.put(future.result()))))
        finished.set()

    with ActorlibExecutor() as ex:
        ex.submit(square, 5).add_done_callback(callback)
        assert finished.wait(30)
    assert seen == [("actorlib-executor", 25)]


def test_task_options_are_passed_to_the_tasks():
    with ActorlibExecutor(num_cpus=3) as ex:  # more than the cluster has
        assert isinstance(ex.submit(square, 1).exception(timeout=30), InfeasibleResourcesError)
    with pytest.raises(ValueError, match="invalid option"):
        ActorlibExecutor(no_such_option=1)
    with pytest.raises(ValueError):
        ActorlibExecutor(max_workers=0)


def test_an_unpicklable_argument_fails_its_future_only():
    with ActorlibExecutor() as ex:
        bad = ex.submit(square, threading.Lock())
        assert isinstance(bad.exception(timeout=30), TypeError)
        assert ex.submit(square, 3).result(30) == 9


def test_many_futures_all_complete():
    with ActorlibExecutor(max_workers=3) as ex:
        futures = [ex.submit(square, i) for i in range(60)]
        done, not_done = cf.wait(futures, timeout=60)
        assert not not_done
        assert sorted(f.result() for f in futures) == sorted(i * i for i in range(60))
