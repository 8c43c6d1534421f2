"""The memory monitor on a loopback cluster: a node whose threshold sits just above its
current memory use kills the task that allocates past it, the task is retried, and finally
raises OutOfMemoryError with the figures; the node, an actor on it and other tasks go on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest

import actorlib
from actorlib.exceptions import OutOfMemoryError, WorkerCrashedError

from ..integration.conftest import poll
from .conftest import MultiNode

# The threshold: this much above the machine's use when the node starts. Other programs on a
# shared machine count too, so the test keeps the time they could push it over short.
HEADROOM = 4 * 2**30  # 2 GiB was too little: other programs' growth alone crossed it
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
    multi.threshold = float(f"{threshold:.4f}")
    multi.env["ACTORLIB_MEMORY_MONITOR_REFRESH"] = "0.1"
    try:
        multi.add_node("127.0.0.2", cpus=3, resources={"hog": 3})
    except BaseException:
        multi.stop()
        raise
    del multi.env["ACTORLIB_MEMORY_USAGE_THRESHOLD"]
    with multi.connected():
        yield multi


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


@actorlib.remote(resources={"hog": 0.1}, max_restarts=1)
class Hoarder:
    """An actor that grows on request: restartable once."""

    def __init__(self) -> None:
        self.held: list[bytearray] = []

    def pid(self) -> int:
        return os.getpid()

    def grow(self, limit: int, gate: str, past: float = 1.0) -> float:
        """Grow to ``limit`` bytes (or until the machine's use is above ``past``), and hold that
        until the machine's use stayed above ``past`` for 0.5 s (five of the monitor's readings
        at 0.1 s), growing again whenever other programs freed memory meanwhile; return the
        lowest use (a fraction) seen over that half second."""
        wait_for(gate)
        room = lambda: len(self.held) * CHUNK < limit  # noqa: E731
        deadline = time.monotonic() + 120
        while True:
            while room() and _machine_use() <= past:
                self.held.append(bytearray(CHUNK))
                self.held[-1][::4096] = b"\x01" * (CHUNK // 4096)
                time.sleep(0.02)
            lowest, until = _machine_use(), time.monotonic() + 0.5
            while time.monotonic() < until and (lowest > past or not room()):
                time.sleep(0.02)
                lowest = min(lowest, _machine_use())
            if lowest > past or not room() or time.monotonic() > deadline:
                break  # else it fell back to ``past`` or below: grow again, and hold anew
        self.held = []
        return lowest


def _machine_use() -> float:
    memory = psutil.virtual_memory()
    return (memory.total - memory.available) / memory.total


def test_an_actor_with_restarts_left_is_killed_and_restarted_one_without_is_spared(oom_cluster, tmp_path):
    from actorlib.util.state import list_actors

    survivor = Survivor.remote()  # max_restarts=0: never the monitor's to kill
    spared_pid = actorlib.get(survivor.pid.remote(), timeout=60)
    hoarder = Hoarder.remote()
    first_pid = actorlib.get(hoarder.pid.remote(), timeout=60)
    gate = tmp_path / "gate"
    growing = hoarder.grow.remote(int(HEADROOM * 3), str(gate))
    gate.write_text("go")
    with pytest.raises(actorlib.exceptions.ActorDiedError) as caught:  # max_task_retries=0: the call is lost
        actorlib.get(growing, timeout=300)
    assert "died while running Hoarder.grow() (killed by the memory monitor on node" in str(caught.value)
    # Its supervisor restarted it (its one restart), and the node logged why.
    second_pid = poll(lambda: _pid_or_none(hoarder), timeout=120)
    assert second_pid != first_pid and not psutil.pid_exists(first_pid)
    (view,) = [a for a in list_actors(filters=[("class_name", "=", "Hoarder")], timeout=30) if a.state == "ALIVE"]
    assert view.num_restarts == 1
    logs = poll(lambda: [t for t in _node_logs(oom_cluster) if "actor Hoarder" in t], timeout=30)
    assert "killed by the memory monitor on node" in logs[0] and "restarts left: 1" in logs[0]
    # With no restart left it is spared: it grows past the threshold, stays there while the
    # monitor reads it, and is not killed. (Grown until past the threshold, and topped up while
    # it holds: other programs on a shared machine free memory and take it as they run.)
    past = oom_cluster.threshold + 0.01
    lowest = actorlib.get(hoarder.grow.remote(int(HEADROOM * 2.5), str(gate), past), timeout=300)
    assert lowest > oom_cluster.threshold  # above it for all of the half second it held
    assert actorlib.get(hoarder.pid.remote(), timeout=60) == second_pid
    assert actorlib.get(survivor.pid.remote(), timeout=60) == spared_pid
    actorlib.kill(hoarder)
    actorlib.kill(survivor)


def _pid_or_none(actor) -> int | None:
    try:
        return actorlib.get(actor.pid.remote(), timeout=10)
    except (actorlib.exceptions.ActorDiedError, actorlib.exceptions.GetTimeoutError):
        return None


def _node_logs(multi: MultiNode) -> list[str]:
    lines = []
    for path in Path(multi.tmp).glob("actorlib-*/session_2*/logs/node.err"):
        try:
            lines += [line for line in path.read_text(errors="replace").splitlines() if "memory monitor" in line]
        except OSError:
            pass
    return lines
