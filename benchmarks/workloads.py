"""The workloads, written once against Ray Core's API and run on ``ray`` or ``actorlib``.

Each takes the runtime module (already ``init``-ed) and returns its figures. Only the
standard library and numpy here: Ray's workers import this module to run its functions.
"""

import os
import signal
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

N_SYNC = 1_000
N_ASYNC = 10_000
N_ACTORS = 8
NUMPY_BYTES = 100_000_000
IDLE_S = 2.0
GET_TIMEOUT_S = 120.0
SMALL_VALUE = {"a": 1, "b": [1, 2, 3]}


def one() -> int:
    """The trivial task."""
    return 1


def first(arr: Any) -> float:
    """Touch the array a task received."""
    return float(arr[0])


def die_once(marker: str) -> int:
    """SIGKILL this worker on the first attempt; the retry finds the marker and succeeds."""
    if not os.path.exists(marker):
        open(marker, "x").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return 1


class Counter:
    """The trivial actor."""

    def __init__(self) -> None:
        self.n = 0

    def incr(self) -> int:
        self.n += 1
        return self.n


def cold_start(rt: ModuleType) -> dict[str, Any]:
    f = rt.remote(one)
    t0 = time.perf_counter()
    rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    return {"t_result": time.time(), "first_task_s": time.perf_counter() - t0}


def sync_tasks(rt: ModuleType) -> dict[str, Any]:
    f = rt.remote(one)
    rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    for _ in range(N_SYNC):
        rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    return {"tasks_per_s": N_SYNC / (time.perf_counter() - t0)}


def async_tasks(rt: ModuleType) -> dict[str, Any]:
    f = rt.remote(one)
    rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    refs = [f.remote() for _ in range(N_ASYNC)]
    submit_s = time.perf_counter() - t0
    results = rt.get(refs, timeout=GET_TIMEOUT_S)
    elapsed = time.perf_counter() - t0
    assert sum(results) == N_ASYNC
    return {"tasks_per_s": N_ASYNC / elapsed, "submit_s": submit_s}


def wait_loop(rt: ModuleType) -> dict[str, Any]:
    """10,000 tasks drained one at a time: ``while pending: ready, pending = wait(pending)``."""
    f = rt.remote(one)
    rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    pending = [f.remote() for _ in range(N_ASYNC)]
    drained = 0
    while pending:
        ready, pending = rt.wait(pending, timeout=GET_TIMEOUT_S)
        drained += len(ready)
    elapsed = time.perf_counter() - t0
    assert drained == N_ASYNC
    del ready, pending
    return {"tasks_per_s": N_ASYNC / elapsed, "rss_growth_mib": _rss_mib() - rss_before}


def _rss_mib() -> float:
    """This process's resident memory (no psutil: Ray's venv has none)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def put_get(rt: ModuleType) -> dict[str, Any]:
    rt.get(rt.put(SMALL_VALUE), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    for _ in range(N_ASYNC):
        rt.get(rt.put(SMALL_VALUE), timeout=GET_TIMEOUT_S)
    return {"ops_per_s": N_ASYNC / (time.perf_counter() - t0)}


def numpy_100mb(rt: ModuleType) -> dict[str, Any]:
    import numpy as np

    arr = np.ones(NUMPY_BYTES // 8)
    f = rt.remote(first)
    rt.get(f.remote(np.ones(1)), timeout=GET_TIMEOUT_S)
    put_s, ref = _timed(lambda: rt.put(arr))
    get_s, out = _timed(lambda: rt.get(ref, timeout=GET_TIMEOUT_S))
    assert out.shape == arr.shape and out[-1] == 1.0
    pass_s, value = _timed(lambda: rt.get(f.remote(ref), timeout=GET_TIMEOUT_S))
    assert value == 1.0
    return {
        "put_s": put_s,
        "get_s": get_s,
        "get_owndata": bool(out.flags.owndata),
        "get_writeable": bool(out.flags.writeable),
        "pass_s": pass_s,
    }


def idle(rt: ModuleType) -> dict[str, Any]:
    rt.get(rt.remote(one).remote(), timeout=GET_TIMEOUT_S)
    time.sleep(IDLE_S)  # the point is to be idle: let start-up work settle
    return {}


def recover(rt: ModuleType) -> dict[str, Any]:
    f = rt.remote(one)
    rt.get(f.remote(), timeout=GET_TIMEOUT_S)
    normal_task_s, _ = _timed(lambda: rt.get(f.remote(), timeout=GET_TIMEOUT_S))
    die = rt.remote(max_retries=1)(die_once)
    with tempfile.TemporaryDirectory(prefix="bench-recover-") as tmp:
        marker = os.path.join(tmp, "attempted")
        recover_s, value = _timed(lambda: rt.get(die.remote(marker), timeout=GET_TIMEOUT_S))
        assert value == 1 and os.path.exists(marker)
    return {"recover_s": recover_s, "normal_task_s": normal_task_s}


def actor_calls(rt: ModuleType) -> dict[str, Any]:
    a = rt.remote(Counter).remote()
    rt.get(a.incr.remote(), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    for _ in range(N_SYNC):
        rt.get(a.incr.remote(), timeout=GET_TIMEOUT_S)
    return {"calls_per_s": N_SYNC / (time.perf_counter() - t0)}


def actor_pipeline(rt: ModuleType) -> dict[str, Any]:
    a = rt.remote(Counter).remote()
    rt.get(a.incr.remote(), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    refs = [a.incr.remote() for _ in range(N_ASYNC)]
    results = rt.get(refs, timeout=GET_TIMEOUT_S)
    elapsed = time.perf_counter() - t0
    assert results == list(range(2, N_ASYNC + 2)), "calls from one caller run in order"
    return {"calls_per_s": N_ASYNC / elapsed}


def actor_create(rt: ModuleType) -> dict[str, Any]:
    cls = rt.remote(Counter)
    t0 = time.perf_counter()
    actors = [cls.options(num_cpus=0).remote() for _ in range(N_ACTORS)]
    refs = [a.incr.remote() for a in actors]
    ready, _ = rt.wait(refs, num_returns=1, timeout=GET_TIMEOUT_S)
    assert ready, "no actor answered"
    first_actor_s, t_first_actor = time.perf_counter() - t0, time.time()
    assert rt.get(refs, timeout=GET_TIMEOUT_S) == [1] * N_ACTORS
    return {
        "create_s": time.perf_counter() - t0,
        "first_actor_s": first_actor_s,
        "t_first_actor": t_first_actor,
    }


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


WORKLOADS: dict[str, Callable[[ModuleType], dict[str, Any]]] = {
    "cold_start": cold_start,
    "sync_tasks": sync_tasks,
    "async_tasks": async_tasks,
    "wait_loop": wait_loop,
    "put_get": put_get,
    "numpy": numpy_100mb,
    "idle": idle,
    "recover": recover,
    "actor_calls": actor_calls,
    "actor_pipeline": actor_pipeline,
    "actor_create": actor_create,
}
