"""The same workloads on ``concurrent.futures.ProcessPoolExecutor`` (spawn, 2 workers).

Only where they make sense: a pool has no object store, no actors, and breaks
(instead of retrying) when a worker dies.
"""

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from .workloads import IDLE_S, N_ASYNC, N_SYNC, NUMPY_BYTES, first, local_sum_s, one, total


def cold_start(ex: Executor) -> dict[str, Any]:
    t0 = time.perf_counter()
    ex.submit(one).result()
    return {"t_result": time.time(), "first_task_s": time.perf_counter() - t0}


def sync_tasks(ex: Executor) -> dict[str, Any]:
    ex.submit(one).result()
    t0 = time.perf_counter()
    for _ in range(N_SYNC):
        ex.submit(one).result()
    return {"tasks_per_s": N_SYNC / (time.perf_counter() - t0)}


def async_tasks(ex: Executor) -> dict[str, Any]:
    ex.submit(one).result()
    t0 = time.perf_counter()
    futures = [ex.submit(one) for _ in range(N_ASYNC)]
    submit_s = time.perf_counter() - t0
    assert sum(f.result() for f in futures) == N_ASYNC
    return {"tasks_per_s": N_ASYNC / (time.perf_counter() - t0), "submit_s": submit_s}


def numpy_100mb(ex: Executor) -> dict[str, Any]:
    import numpy as np

    arr = np.ones(NUMPY_BYTES // 8)
    ex.submit(first, np.ones(1)).result()
    t0 = time.perf_counter()
    assert ex.submit(first, arr).result() == 1.0
    pass_s = time.perf_counter() - t0
    sum_local_s = ex.submit(local_sum_s).result()
    t0 = time.perf_counter()
    assert ex.submit(total, arr).result() == arr.size
    return {"pass_s": pass_s, "sum_local_s": sum_local_s, "sum_value_s": time.perf_counter() - t0}


def idle(ex: Executor) -> dict[str, Any]:
    ex.submit(one).result()
    time.sleep(IDLE_S)  # the point is to be idle: let start-up work settle
    return {}


WORKLOADS: dict[str, Callable[[Executor], dict[str, Any]]] = {
    "cold_start": cold_start,
    "sync_tasks": sync_tasks,
    "async_tasks": async_tasks,
    "numpy": numpy_100mb,
    "idle": idle,
}
