"""The memory monitor on a loopback cluster: a node whose threshold sits just above its
current memory use kills the task that allocates past it, the task is retried, and finally
raises OutOfMemoryError with the figures; the node, an actor on it and other tasks go on."""

from __future__ import annotations

import os
import time

import psutil
import pytest

import actorlib
from actorlib.exceptions import OutOfMemoryError, WorkerCrashedError

from ..integration.conftest import poll
from .conftest import MultiNode

# The threshold: this much above the machine's use when the node starts. Other programs on a
# shared machine count too, so the test keeps the time they could push it over short.
HEADROOM = 2 * 2**30
CHUNK = 64 * 2**20


def wait_for(path: str) -> None:
    while not os.path.exists(path):
        time.sleep(0.01)


@actorlib.remote(resources={"hog": 1}, max_retries=1)
def hog(limit: int, gate: str) -> int:
    """Once ``gate`` exists, allocate (and touch) memory 64 MiB at a time, up to ``limit`` bytes."""
    wait_for(gate)
    held = []
    while len(held) * CHUNK < limit:
        held.append(bytearray(CHUNK))  # zero-filled by the kernel on first touch
        held[-1][::4096] = b"\x01" * (CHUNK // 4096)
        time.sleep(0.02)
    return len(held)


@actorlib.remote(resources={"hog": 1})
def light(x: int) -> int:
    return x + 1


@actorlib.remote(resources={"hog": 1}, max_retries=0)
def bystander(gate: str) -> int:
    """Not retriable, and started after the hog: the monitor must spare it."""
    wait_for(gate)
    return os.getpid()


@actorlib.remote(resources={"hog": 0.1})
class Survivor:
    def pid(self) -> int:
        return os.getpid()


@pytest.fixture(scope="module")
def oom_cluster():
    multi = MultiNode([])
    memory = psutil.virtual_memory()
    threshold = min(0.99, (memory.total - memory.available + HEADROOM) / memory.total)
    multi.env["ACTORLIB_MEMORY_USAGE_THRESHOLD"] = f"{threshold:.4f}"
    multi.env["ACTORLIB_MEMORY_MONITOR_REFRESH"] = "0.1"
    try:
        multi.add_node("127.0.0.2", cpus=3, resources={"hog": 3})
        del multi.env["ACTORLIB_MEMORY_USAGE_THRESHOLD"]
        multi.connect()
        poll(lambda: len(multi.node_ids()) == 2, timeout=30)
        yield multi
    finally:
        if actorlib.is_initialized():
            multi.disconnect()
        multi.stop()


def running(name: str) -> bool:
    from actorlib.util.state import list_tasks

    return any(t.state == "RUNNING" for t in list_tasks(filters=[("name", "=", name)], timeout=30))


def test_a_task_past_the_threshold_is_killed_retried_and_fails_with_the_figures(oom_cluster, tmp_path):
    from actorlib.util.state import list_tasks

    node = oom_cluster.node_ids()["127.0.0.2"]
    survivor = Survivor.remote()
    pid = actorlib.get(survivor.pid.remote(), timeout=60)
    total = psutil.virtual_memory().total
    grow, done = tmp_path / "grow", tmp_path / "done"
    hogging = hog.remote(int(HEADROOM * 3), str(grow))
    poll(lambda: running("hog"), timeout=60)
    spared = bystander.remote(str(done))  # the most recently started task, but not retriable
    poll(lambda: running("bystander"), timeout=60)
    failed = lambda: [t for t in list_tasks(filters=[("name", "=", "hog")], timeout=30) if t.state == "FAILED"]  # noqa: E731
    started = time.monotonic()
    grow.write_text("go")
    poll(failed, timeout=120)  # the first kill took the hog, the newest retriable task ...
    done.write_text("go")  # ... not the bystander, started later but with no retry: it finishes
    assert actorlib.get(spared, timeout=60) > 0
    with pytest.raises(OutOfMemoryError) as caught:
        actorlib.get(hogging, timeout=300)
    assert isinstance(caught.value, WorkerCrashedError)  # what code catching crashes already expects
    message = str(caught.value)
    assert "killed by the memory monitor on node" in message and "hog()" in message
    assert f"of {total / 2**30:.2f} GiB used" in message and "above its threshold of" in message
    assert "Largest processes: pid" in message and "ACTORLIB_MEMORY_USAGE_THRESHOLD" in message
    assert "tried 2 times (max_retries=1)" in message
    assert time.monotonic() - started >= 1.0  # the retry waited (backoff) before running again
    # The node, the actor on it and later tasks carry on.
    assert actorlib.get(survivor.pid.remote(), timeout=60) == pid
    assert actorlib.get([light.remote(i) for i in range(4)], timeout=60) == [1, 2, 3, 4]
    assert node in oom_cluster.node_ids().values()
    # Each kill is in the task listing, with its reason.
    kills = poll(lambda: len(f := failed()) >= 2 and f, timeout=30)
    assert all("memory monitor" in (task.error_message or "") for task in kills)
    actorlib.kill(survivor)
