from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import actorlib


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def descendants() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)]


def wait_gone(pids, timeout: float = 10.0) -> list[int]:
    """Poll until every pid is gone (or timeout); return survivors."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        survivors = [p for p in pids if alive(p)]
        if not survivors:
            return []
        time.sleep(0.02)
    return [p for p in pids if alive(p)]


def processes_mentioning(text: str) -> list[int]:
    """Pids of the processes whose command line or environment contains ``text`` (a session
    path, say). Titled processes (``actorlib::head``) show no config on their command line,
    but keep the environment they started with, ACTORLIB_TMPDIR included."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(text in part for part in process.info["cmdline"] or ()) or any(
                text in value for value in process.environ().values()
            ):
                found.append(process.info["pid"])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return found


def wakeups(pid: int) -> int:
    """Voluntary context switches of all the threads of ``pid``: each is a wait that ended."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/status") as status:
            for line in status:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def still(pid: int, window: float) -> bool:
    """Whether no thread of ``pid`` woke up during ``window`` seconds."""
    before = wakeups(pid)
    time.sleep(window)
    return wakeups(pid) == before


def poll(predicate, timeout: float = 10.0, interval: float = 0.02):
    """Poll ``predicate`` until it returns a truthy value; return it, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Cluster:
    """An embedded cluster for a test, checked to leave no process behind."""

    def __init__(self, **options) -> None:
        self.before = set(descendants())
        self.context = actorlib.init(**options)

    def processes(self) -> list[int]:
        return [p for p in descendants() if p not in self.before]

    def shutdown(self) -> None:
        pids = self.processes()
        actorlib.shutdown()
        survivors = wait_gone(pids)
        assert not survivors, f"processes left after shutdown: {survivors}"


_shared: Cluster | None = None
SHARED_OPTIONS = dict(num_cpus=2, resources={"slot": 1})


def _stop_shared() -> None:
    global _shared
    if _shared is not None:
        shared, _shared = _shared, None
        shared.shutdown()


@pytest.fixture
def cluster():
    """A 2-CPU cluster, shared by the tests that use it (started on first use)."""
    global _shared
    if _shared is None or not actorlib.is_initialized():
        _shared = Cluster(**SHARED_OPTIONS)
    return _shared


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_cluster_at_the_end():
    yield
    _stop_shared()


@pytest.fixture
def fresh_cluster():
    """A factory for a cluster of a test's own; shut down (and checked) after the test."""
    _stop_shared()
    made: list[Cluster] = []

    def make(**options) -> Cluster:
        made.append(Cluster(**options))
        return made[-1]

    yield make
    for c in made:
        if actorlib.is_initialized():
            c.shutdown()


def run_driver(code: str, *args: str, timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a driver script in a fresh interpreter; return the finished process."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
