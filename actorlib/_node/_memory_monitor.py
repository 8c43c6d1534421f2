"""The memory monitor: kill a task's worker before the machine (or container) runs out of memory.

Every ``ACTORLIB_MEMORY_MONITOR_REFRESH`` seconds (default 0.25; 0 disables) the node
reads its memory use: the container's (cgroup v2, else v1) when it has a limit, else
the machine's. Above ``ACTORLIB_MEMORY_USAGE_THRESHOLD`` of the limit (default 0.95;
0 disables) it SIGKILLs the worker of the most recently started retriable task (with
none, of the most recently started task) — never the node, the head, a driver, an
actor or a job's entrypoint — and records why, with the
figures, as that worker's exit reason: the task's owner retries it later with backoff,
or raises OutOfMemoryError with that text. Then it waits for the worker to be gone
(its memory freed) before it may kill again.

With no task worker to kill, it kills the most recently started actor that its
supervisor will restart (``max_restarts`` left, not in a supervision group): the
actor comes back with its ``__init__`` re-run, as after any crash. An actor
without restarts left is never killed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import trio

from .._core._submitter import OOM_KILLED
from .._wire._receive import read_small_file

log = logging.getLogger("actorlib.node")

DEFAULT_THRESHOLD = 0.95
DEFAULT_REFRESH = 0.25  # seconds
UNLIMITED = 2**60  # cgroup v1 says "no limit" with a huge number
TOP_PROCESSES = 3
UNLIMITED_RESTARTS = sys.maxsize  # an actor's restarts left with max_restarts=-1


@dataclass(frozen=True)
class MemoryUse:
    used: int
    limit: int
    source: str  # "cgroup v2" | "cgroup v1" | "machine"

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class MachineMemory:
    total: int
    available: int


def machine_memory(meminfo: str = "/proc/meminfo") -> Any:
    """The machine's total and available memory, as ``psutil.virtual_memory()`` gives them
    (MemTotal, MemAvailable) without its 32 KiB read buffer, four times a second for the
    node's life (see _receive.read_small_file); psutil's when MemAvailable is missing."""
    found = {}
    try:
        for line in read_small_file(meminfo).splitlines():
            name, _, value = line.partition(b":")
            if name in (b"MemTotal", b"MemAvailable"):
                found[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if len(found) < 2:
        return psutil.virtual_memory()
    return MachineMemory(total=found[b"MemTotal"], available=found[b"MemAvailable"])


def _read_text(path: Path) -> str:
    return read_small_file(path).decode(errors="replace")


def _read_int(path: Path) -> int | None:
    try:
        text = _read_text(path).strip()
    except (OSError, ValueError):
        return None
    if text == "max":
        return UNLIMITED
    try:
        return int(text)
    except ValueError:
        return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in _read_text(path).splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def read_memory(cgroup: Path = Path("/sys/fs/cgroup"), machine: Any = None) -> MemoryUse:
    """This node's memory use and limit: its cgroup's when that has a limit below the
    machine's memory (page cache that can be dropped, inactive_file, not counted), else
    the machine's (total - available)."""
    vm = machine if machine is not None else machine_memory()
    machine_use = MemoryUse(used=int(vm.total - vm.available), limit=int(vm.total), source="machine")
    limit, current = _read_int(cgroup / "memory.max"), _read_int(cgroup / "memory.current")
    if limit is not None and current is not None:  # v2
        source, inactive = "cgroup v2", _stat(cgroup / "memory.stat", "inactive_file")
    else:
        v1 = cgroup / "memory"
        limit, current = _read_int(v1 / "memory.limit_in_bytes"), _read_int(v1 / "memory.usage_in_bytes")
        source, inactive = "cgroup v1", _stat(v1 / "memory.stat", "total_inactive_file")
    if limit is None or current is None or limit >= min(UNLIMITED, vm.total):
        return machine_use
    return MemoryUse(used=max(0, current - inactive), limit=limit, source=source)


def settings(environ: Any = os.environ) -> tuple[float, float]:
    """(threshold, refresh seconds) from the environment; raises ValueError naming a bad one."""
    out = []
    for name, default, top in (("ACTORLIB_MEMORY_USAGE_THRESHOLD", DEFAULT_THRESHOLD, 1.0), ("ACTORLIB_MEMORY_MONITOR_REFRESH", DEFAULT_REFRESH, None)):
        text = environ.get(name, "")
        try:
            value = float(text) if text else default
        except ValueError:
            raise ValueError(f"{name} must be a number, got {text!r}") from None
        if value < 0 or (top is not None and value > top):
            raise ValueError(f"{name} must be between 0 and {top:g} (0 disables the memory monitor), got {value:g}" if top else f"{name} must be 0 or more seconds, got {value:g}")
        out.append(value)
    return out[0], out[1]


@dataclass(frozen=True)
class Candidate:
    worker: Any  # a task's pool Worker, or an actor's ActorChild (actor=True)
    pid: int
    started: float  # monotonic: when its current task (or lease, or the actor's incarnation) started
    task: str  # the task's name, or the actor's class name
    retriable: bool = True
    actor: bool = False
    restarts_left: int = 0  # actors only


def _rank(candidate: Candidate) -> int:
    if candidate.actor:
        return 1  # restarted with its __init__ re-run: its state is lost, so after retriable tasks
    return 2 if candidate.retriable else 0


def pick_victim(candidates: list[Candidate]) -> Candidate | None:
    """The most recently started retriable task's (the least work is lost, it will run again, and
    it most likely pushed memory over); with none, the most recently started actor with restarts
    left; with none, the most recently started of the other tasks."""
    return max(candidates, key=lambda c: (_rank(c), c.started), default=None)


def top_processes(count: int = TOP_PROCESSES) -> list[tuple[int, str, int]]:
    """(pid, name, RSS) of the machine's largest processes by resident memory."""
    found = []
    for process in psutil.process_iter(["pid", "name", "memory_info"]):
        info = process.info
        if info.get("memory_info") is not None:
            found.append((info["pid"], info.get("name") or "?", info["memory_info"].rss))
    return sorted(found, key=lambda p: -p[2])[:count]


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def describe(use: MemoryUse, threshold: float, node: str, victim: Candidate, top: list[tuple[int, str, int]]) -> str:
    procs = ", ".join(f"pid {pid} {name} {gib(rss)}" for pid, name, rss in top)
    if victim.actor:
        left = "unlimited" if victim.restarts_left >= UNLIMITED_RESTARTS else str(victim.restarts_left)
        chosen = (
            f"actor {victim.task} (pid {victim.pid}) was the most recently started actor there that "
            f"will be restarted (restarts left: {left}), and no retriable task was running"
        )
    else:
        chosen = (
            f"{victim.task}() on worker pid {victim.pid} was the most "
            f"recently started {'retriable ' if victim.retriable else ''}task there"
        )
    return (
        f"{OOM_KILLED} on node {node}: {gib(use.used)} of {gib(use.limit)} used ({use.fraction:.1%}, {use.source}), "
        f"above its threshold of {threshold:.1%}, and {chosen}. Largest processes: {procs}. "
        f"To avoid it: use less memory per task or actor, ask for "
        f"memory with .options(memory=...) so that fewer such tasks run at once, or raise "
        f"ACTORLIB_MEMORY_USAGE_THRESHOLD (0 disables the monitor)"
    )


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


async def until_gone(process: psutil.Process | None, poll: float = 0.02) -> None:
    """Return once ``process`` has exited: gone, or a zombie (its memory is freed by then)."""
    while process is not None:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        await trio.sleep(poll)


class MemoryMonitor:
    """Samples one node's memory; above the threshold, kills one task worker at a time."""

    def __init__(self, service: Any, threshold: float, refresh: float, read: Any = read_memory) -> None:
        self.service = service
        self.threshold = threshold
        self.refresh = refresh
        self.read = read
        self.kills = 0

    @property
    def enabled(self) -> bool:
        return self.threshold > 0 and self.refresh > 0

    async def run(self) -> None:
        if not self.enabled:
            await trio.sleep_forever()
        while True:
            await trio.sleep(self.refresh)
            # Read here, not in a thread: /proc/meminfo and the cgroup files take ~50 µs, less
            # than a thread's round trip, whose return wakes Trio through its wake-up socket
            # (drained with a 64 KiB recv: 4 short-lived 64 KiB blocks a second in every node).
            use = self.read()
            if use.fraction <= self.threshold:
                continue
            victim = pick_victim(self.candidates())
            if victim is None:
                continue  # nothing this monitor may kill: the kernel's OOM killer may act
            reason = describe(use, self.threshold, self.service.config.short, victim, await trio.to_thread.run_sync(top_processes))
            log.warning("%s", reason)
            self.kills += 1
            process = _process(victim.pid)  # before the kill: a pid reused later is not the victim
            self.kill(victim, reason)
            with trio.move_on_after(10.0):  # its memory is freed once it is gone
                if victim.actor:
                    await victim.worker.process.wait()
                else:
                    # Not the pool's word (it counts a stopped worker exited at once): a big
                    # process takes a while to exit, more so on a loaded machine, and a reading
                    # meanwhile would count its memory still and kill a second task.
                    await until_gone(process)

    def candidates(self) -> list[Candidate]:
        """Task workers running a task (leased) and actors that will be restarted: never actors
        without restarts left, entrypoints, the node or drivers."""
        service = self.service
        out = []
        if service.actors is not None:
            for spec, child, since, left in service.actors.restartable():
                out.append(Candidate(worker=child, pid=child.pid, started=since, task=spec.class_name, actor=True, restarts_left=left))
        for worker in list(service.pool.workers.values()):
            lease = worker.lease
            if lease is None or worker.state != "leased" or not worker.pid:
                continue
            running = service.tasks.running(worker.worker_id)
            started = lease.granted
            name = lease.name
            if running:
                started = max(started, time.monotonic() - max(0.0, time.time() - running[0].start))
                name = running[0].name
            out.append(Candidate(worker=worker, pid=worker.pid, started=started, task=name or "a task", retriable=lease.retriable))
        return out

    def kill(self, victim: Candidate, reason: str) -> None:
        if victim.actor:
            victim.worker.kill(reason)  # its supervisor restarts it; the head records why
            return
        try:
            os.killpg(victim.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.service.pool.stop(victim.worker, reason)  # the exit reason owners and listings see
