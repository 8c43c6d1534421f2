"""The memory monitor's pure parts (reading cgroup limits, its settings, choosing a victim), and
its loop against real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tracemalloc
from collections import namedtuple
from types import SimpleNamespace

import psutil
import pytest
import trio

from actorlib._node._memory_monitor import Candidate, MemoryMonitor, MemoryUse, describe, machine_memory, pick_victim, read_memory, settings

VM = namedtuple("VM", "total available")
GIB = 2**30


def test_a_cgroup_v2_limit_wins_over_the_machine(tmp_path):
    (tmp_path / "memory.max").write_text("4294967296\n")
    (tmp_path / "memory.current").write_text(str(3 * GIB))
    (tmp_path / "memory.stat").write_text(f"anon 1\ninactive_file {GIB}\nactive_file 5\n")
    use = read_memory(tmp_path, VM(total=64 * GIB, available=60 * GIB))
    assert use == MemoryUse(used=2 * GIB, limit=4 * GIB, source="cgroup v2")  # droppable page cache not counted
    assert use.fraction == 0.5


def test_a_cgroup_v1_limit_is_read_too(tmp_path):
    (tmp_path / "memory").mkdir()
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(str(2 * GIB))
    (tmp_path / "memory" / "memory.usage_in_bytes").write_text(str(GIB))
    (tmp_path / "memory" / "memory.stat").write_text("total_inactive_file 0\n")
    assert read_memory(tmp_path, VM(total=64 * GIB, available=60 * GIB)) == MemoryUse(used=GIB, limit=2 * GIB, source="cgroup v1")


def test_without_a_limit_the_machine_counts(tmp_path):
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text(str(GIB))
    assert read_memory(tmp_path, VM(total=8 * GIB, available=6 * GIB)) == MemoryUse(used=2 * GIB, limit=8 * GIB, source="machine")
    assert read_memory(tmp_path / "none", VM(total=8 * GIB, available=2 * GIB)).source == "machine"


def test_the_machines_memory_is_read_as_psutil_reads_it(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       16000 kB\nMemFree:  10 kB\nMemAvailable:    12000 kB\nBuffers: 1 kB\n")
    assert (machine_memory(str(meminfo)).total, machine_memory(str(meminfo)).available) == (16000 * 1024, 12000 * 1024)
    assert machine_memory().total == psutil.virtual_memory().total
    meminfo.write_text("MemTotal:       16000 kB\n")  # no MemAvailable (a kernel before 3.14): psutil's estimate
    assert machine_memory(str(meminfo)).total == psutil.virtual_memory().total


def test_reading_memory_allocates_no_read_buffer(tmp_path):
    """Regression: psutil.virtual_memory() allocates a 32 KiB read buffer per call, four times a
    second for the node's life: short-lived blocks that fragmented the head's C heap in the soak."""
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.current").write_text(str(GIB))
    read_memory(tmp_path)
    tracemalloc.start()
    try:
        for _ in range(10):
            assert read_memory(tmp_path).source == "machine"
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - current < 16 * 1024, f"reading the node's memory allocated {peak - current} bytes at once"


def test_settings_have_defaults_and_bad_ones_are_named():
    assert settings({}) == (0.95, 0.25)
    assert settings({"ACTORLIB_MEMORY_USAGE_THRESHOLD": "0", "ACTORLIB_MEMORY_MONITOR_REFRESH": "1"}) == (0.0, 1.0)
    with pytest.raises(ValueError, match="ACTORLIB_MEMORY_USAGE_THRESHOLD must be between 0 and 1"):
        settings({"ACTORLIB_MEMORY_USAGE_THRESHOLD": "1.5"})
    with pytest.raises(ValueError, match="ACTORLIB_MEMORY_MONITOR_REFRESH must be a number, got 'soon'"):
        settings({"ACTORLIB_MEMORY_MONITOR_REFRESH": "soon"})


def test_the_most_recently_started_task_is_the_victim_and_the_reason_has_the_figures():
    old, new = Candidate(worker=None, pid=10, started=5.0, task="old"), Candidate(worker=None, pid=11, started=9.0, task="hog")
    assert pick_victim([old, new]) is new and pick_victim([]) is None
    final = Candidate(worker=None, pid=12, started=10.0, task="no_retries", retriable=False)
    assert pick_victim([old, new, final]) is new  # a retriable task first, even an older one
    assert pick_victim([final]) is final
    text = describe(MemoryUse(used=3 * GIB, limit=4 * GIB, source="machine"), 0.7, "ab12", new, [(11, "python", 2 * GIB)])
    assert text.startswith("killed by the memory monitor on node ab12: 3.00 GiB of 4.00 GiB used (75.0%, machine)")
    assert "threshold of 70.0%" in text and "pid 11" in text and "hog()" in text and "pid 11 python 2.00 GiB" in text
    assert "ACTORLIB_MEMORY_USAGE_THRESHOLD" in text


def test_an_actor_with_restarts_left_comes_after_retriable_tasks_and_before_the_others():
    task = Candidate(worker=None, pid=10, started=1.0, task="old_task")
    actor = Candidate(worker=None, pid=11, started=9.0, task="Cache", actor=True, restarts_left=2)
    final = Candidate(worker=None, pid=12, started=10.0, task="no_retries", retriable=False)
    assert pick_victim([task, actor, final]) is task  # a retriable task loses the least
    assert pick_victim([actor, final]) is actor  # an actor comes back; a task without retries would not
    newer = Candidate(worker=None, pid=13, started=11.0, task="Index", actor=True, restarts_left=sys.maxsize)
    assert pick_victim([actor, newer]) is newer
    use = MemoryUse(used=15 * 2**30, limit=16 * 2**30, source="machine")
    text = describe(use, 0.9, "n1", newer, [(13, "python", 8 * 2**30)])
    assert "actor Index (pid 13)" in text and "restarts left: unlimited" in text
    assert "2" in describe(use, 0.9, "n1", actor, []).split("restarts left: ")[1][:1]


class _Lease:
    def __init__(self, granted: float) -> None:
        self.granted, self.name, self.retriable = granted, "hog", True


class _Worker:
    """A leased task worker, as the monitor sees one in its node's pool."""

    def __init__(self, process: subprocess.Popen, granted: float) -> None:
        self.worker_id, self.pid, self.state, self.lease = os.urandom(4), process.pid, "leased", _Lease(granted)
        self.exited = trio.Event()


class _Node:
    """What the monitor reads of its node: the pool's leased workers (no actors, no running
    tasks' records). Like the real pool, a stopped worker is gone from it, and exited, at once."""

    def __init__(self, workers: list[_Worker]) -> None:
        self.config = SimpleNamespace(short="n1")
        self.actors = None
        self.tasks = SimpleNamespace(running=lambda worker_id: [])
        self.pool = SimpleNamespace(workers={w.worker_id: w for w in workers}, stop=self._stop)
        self.stopped: list[_Worker] = []

    def _stop(self, worker: _Worker, reason: str) -> None:
        del self.pool.workers[worker.worker_id]
        worker.exited.set()
        self.stopped.append(worker)


def _sleeper(**options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], **options)


async def test_after_a_kill_the_monitor_reads_again_only_once_its_victim_is_gone():
    """Regression: it waited for the pool's word that the worker exited, which the pool gives at
    once, and read again while the SIGKILLed worker (a big one, on a loaded machine) still held
    its memory: that reading killed a second task, there a task without retries."""
    # The first victim stands for a worker slow to exit: the monitor's SIGKILL goes to its
    # process group, and this process leads none, so it lives until the test ends it.
    slow, quick = _sleeper(), _sleeper(start_new_session=True)
    alive_at_readings: list[bool] = []

    def read() -> MemoryUse:
        alive_at_readings.append(slow.poll() is None)
        return MemoryUse(used=99, limit=100, source="machine")  # above the threshold, always

    first, second = _Worker(slow, granted=2.0), _Worker(quick, granted=1.0)  # the newest goes first
    node = _Node([first, second])
    monitor = MemoryMonitor(node, threshold=0.5, refresh=0.01, read=read)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(monitor.run)
            with trio.fail_after(60):
                while not node.stopped:
                    await trio.sleep(0.01)
            readings = len(alive_at_readings)
            with trio.move_on_after(0.5):  # fifty refreshes: the old monitor read again at the next
                while len(alive_at_readings) == readings:
                    await trio.sleep(0.01)
            assert alive_at_readings == [True] * readings, "it read again while its last victim was still there"
            slow.kill()
            slow.wait()
            with trio.fail_after(60):  # gone: it reads again, and kills the next one
                while len(node.stopped) < 2:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert node.stopped == [first, second] and monitor.kills == 2
        assert quick.wait(30) == -signal.SIGKILL
    finally:
        for process in (slow, quick):
            process.kill()
            process.wait()
