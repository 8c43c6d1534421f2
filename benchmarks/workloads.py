"""The workloads, written once against Ray Core's API and run on ``ray`` or ``actorlib``.

Each takes the runtime module (already ``init``-ed) and returns its figures. Only the
standard library and numpy here: Ray's workers import this module to run its functions.
"""

import os
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

N_SYNC = 1_000
N_ASYNC = 10_000
N_ACTORS = 8
N_QUEUED = 100_000
NUMPY_BYTES = 100 * 2**20  # 100 MiB, as in issue 16
IDLE_S = 2.0
GET_TIMEOUT_S = 120.0
SMALL_VALUE = {"a": 1, "b": [1, 2, 3]}


def one() -> int:
    """The trivial task."""
    return 1


def first(arr: Any) -> float:
    """Touch the array a task received."""
    return float(arr[0])


def total(arr: Any) -> float:
    """Read every byte of the array a task received."""
    return float(arr.sum())


def import_numpy(hold_s: float) -> int:
    """Warm-up: import numpy in the worker that runs this, and stay busy ``hold_s`` seconds so
    that calls made together run in different workers; returns the worker's pid."""
    import numpy  # noqa: F401

    time.sleep(hold_s)
    return os.getpid()


def local_sum_s() -> float:
    """In a worker: how long summing a local array of NUMPY_BYTES takes (median of 3, after one)."""
    import numpy as np

    arr = np.ones(NUMPY_BYTES // 8)
    arr.sum()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        arr.sum()
        times.append(time.perf_counter() - t0)
    return sorted(times)[1]


def index(i: int) -> int:
    return i


class Pinger:
    """An actor that answers with its process id."""

    def ping(self) -> int:
        return os.getpid()


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
    """This process's resident memory but its mapped shared memory (RssAnon + RssFile: an
    object store faulted into this process's mapping is not memory the driver holds); no
    psutil, Ray's venv has none."""
    kib = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("RssAnon:", "RssFile:")):
                kib += int(line.split()[1])
    return kib / 1024


def put_get(rt: ModuleType) -> dict[str, Any]:
    rt.get(rt.put(SMALL_VALUE), timeout=GET_TIMEOUT_S)
    t0 = time.perf_counter()
    for _ in range(N_ASYNC):
        rt.get(rt.put(SMALL_VALUE), timeout=GET_TIMEOUT_S)
    return {"ops_per_s": N_ASYNC / (time.perf_counter() - t0)}


def numpy_100mb(rt: ModuleType) -> dict[str, Any]:
    import numpy as np

    arr = np.ones(NUMPY_BYTES // 8)
    f, add = rt.remote(first), rt.remote(total)
    # Both workers (num_cpus=2) import numpy first: else whichever worker a timed task lands on
    # may import it inside the figure (0.1-0.4 s here; Ray's workers import numpy at start).
    rt.get([rt.remote(import_numpy).remote(0.3) for _ in range(2)], timeout=GET_TIMEOUT_S)
    rt.get(f.remote(np.ones(1)), timeout=GET_TIMEOUT_S)
    rt.get(add.remote(np.ones(1)), timeout=GET_TIMEOUT_S)
    put_s, ref = _timed(lambda: rt.put(arr))
    get_s, out = _timed(lambda: rt.get(ref, timeout=GET_TIMEOUT_S))
    assert out.shape == arr.shape and out[-1] == 1.0
    pass_s, value = _timed(lambda: rt.get(f.remote(ref), timeout=GET_TIMEOUT_S))
    assert value == 1.0
    sum_local_s = rt.get(rt.remote(local_sum_s).remote(), timeout=GET_TIMEOUT_S)
    sum_ref_s, value = _timed(lambda: rt.get(add.remote(ref), timeout=GET_TIMEOUT_S))
    assert value == arr.size
    # Again: a worker that read it before has its pages mapped (what the first read's faults cost).
    sum_ref_again_s, value = _timed(lambda: rt.get(add.remote(ref), timeout=GET_TIMEOUT_S))
    assert value == arr.size
    sum_value_s, value = _timed(lambda: rt.get(add.remote(arr), timeout=GET_TIMEOUT_S))
    assert value == arr.size
    owndata, writeable = bool(out.flags.owndata), bool(out.flags.writeable)
    del out, ref
    time.sleep(1.2)  # the refs' release reaches the store (an idle actorlib process ticks every 1 s)
    put_again_s, ref = _timed(lambda: rt.put(arr))
    return {
        "copy_s": _copy_s(arr),
        "put_s": put_s,
        "put_again_s": put_again_s,
        "get_s": get_s,
        "get_owndata": owndata,
        "get_writeable": writeable,
        "pass_s": pass_s,
        "sum_local_s": sum_local_s,
        "sum_ref_s": sum_ref_s,
        "sum_ref_again_s": sum_ref_again_s,
        "sum_value_s": sum_value_s,
    }


def _copy_s(arr: Any) -> float:
    """The floor under a put: copying the array into memory this process touched before
    (median of 3, after one)."""
    import numpy as np

    out = np.empty_like(arr)
    np.copyto(out, arr)
    return statistics.median(_timed(lambda: np.copyto(out, arr))[0] for _ in range(3))


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


def actors_100(rt: ModuleType) -> dict[str, Any]:
    return _many_actors(rt, 100)


def actors_1000(rt: ModuleType) -> dict[str, Any]:
    return _many_actors(rt, 1000)


def _many_actors(rt: ModuleType, count: int) -> dict[str, Any]:
    """``count`` actors (no CPU each) on the one node: until each answered one call; memory per actor."""
    rt.get(rt.remote(one).remote(), timeout=GET_TIMEOUT_S)
    time.sleep(IDLE_S / 2)
    pss_before, processes_before = _tree_pss_mib()
    cls = rt.remote(num_cpus=0)(Pinger)
    t0 = time.perf_counter()
    actors = [cls.remote() for _ in range(count)]
    pids = rt.get([a.ping.remote() for a in actors], timeout=900)
    create_s = time.perf_counter() - t0
    assert len(set(pids)) == count
    time.sleep(IDLE_S / 2)
    pss_after, processes_after = _tree_pss_mib()
    t0 = time.perf_counter()
    assert rt.get([a.ping.remote() for a in actors], timeout=900) == pids
    call_all_s = time.perf_counter() - t0
    return {
        "create_s": create_s,
        "call_all_s": call_all_s,
        "pss_per_actor_mib": (pss_after - pss_before) / count,
        "processes_per_actor": (processes_after - processes_before) / count,
    }


def tasks_100k(rt: ModuleType) -> dict[str, Any]:
    """N_QUEUED tasks submitted at once: until all are done; memory per pending task."""
    f = rt.remote(index)
    rt.get(f.remote(0), timeout=GET_TIMEOUT_S)
    time.sleep(IDLE_S / 2)
    driver_before, cluster_before = _rss_mib(), _tree_pss_mib(skip_self=True)[0]
    t0 = time.perf_counter()
    refs = [f.remote(i) for i in range(N_QUEUED)]
    submit_s = time.perf_counter() - t0
    driver_after, cluster_after = _rss_mib(), _tree_pss_mib(skip_self=True)[0]
    results = rt.get(refs, timeout=1800)
    total_s = time.perf_counter() - t0
    assert results[-1] == N_QUEUED - 1
    return {
        "total_s": total_s,
        "submit_s": submit_s,
        "driver_bytes_per_task": (driver_after - driver_before) * 2**20 / N_QUEUED,
        "cluster_bytes_per_task": (cluster_after - cluster_before) * 2**20 / N_QUEUED,
    }


def _descendants() -> list[int]:
    """This process and every process descended from it (from /proc: Ray's venv has no psutil)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [os.getpid()]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _tree_pss_mib(skip_self: bool = False) -> tuple[float, int]:
    """The summed PSS of this process tree (but this process, if ``skip_self``), in MiB, and how
    many processes it has. PSS counts a page shared by n processes as 1/n in each."""
    total, count = 0, 0
    for pid in _descendants():
        if skip_self and pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                total += next(int(line.split()[1]) for line in rollup if line.startswith("Pss:"))
            count += 1
        except (OSError, StopIteration):
            continue
    return total / 1024, count


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
    "actors_100": actors_100,
    "actors_1000": actors_1000,
    "tasks_100k": tasks_100k,
}
