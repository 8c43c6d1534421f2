"""The node's worker processes, as temporary children of its ``workers`` pool supervisor.

Task workers are interchangeable, so a dead one is not restarted in place:
the pool starts a fresh worker when demand needs one (docs/decisions/0003).
A worker environment that fails to start repeatedly is reported, so lease
requests fail with its reason instead of waiting for ever.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

import supervisors

from .. import _ids
from .._environ import ACTOR_PROCESS_ENV
from .._history import History
from .._runtime_env import RUNTIME_ENV_KEYS_ENV, runtime_env_keys
from ._gpus import CUDA_VISIBLE_DEVICES
from ._logs import LogRelay

START_FAILURES_TO_GIVE_UP = 3
EXITS_KEPT = 1000  # why recent workers exited: owners ask (WorkerExitQuery) right after a death
WORKER_SHUTDOWN = 2.0
WORKER_START_TIMEOUT = 60.0
WORKER_TARGET = "actorlib._worker._process:main"


def env_key(env: dict[str, str]) -> str:
    return repr(sorted(env.items()))


class Worker:
    """One worker process and what the node knows of it."""

    __slots__ = ("worker_id", "name", "env", "key", "child", "state", "lease", "idle_since", "exit_reason", "exited", "core", "exec")

    def __init__(self, env: dict[str, str]) -> None:
        self.worker_id = _ids.unique_id()
        self.name = f"w-{_ids.short(self.worker_id)}"
        self.env = env
        self.key = env_key(env)
        self.child: supervisors.ProcessChild | supervisors.ForkedChild | None = None
        self.state = "starting"  # starting | idle | leased | dead
        self.lease: Any = None
        self.idle_since = 0.0
        self.exit_reason = ""
        self.exited = trio.Event()
        self.core = ""  # addresses it reported with READY: its runtime's socket(s)
        self.exec = ""  # and its exec socket(s), for tasks

    @property
    def pid(self) -> int:
        return self.child.pid if self.child is not None and self.child.pid is not None else 0


class WorkerPool:
    """Starts, tracks and stops worker processes."""

    def __init__(
        self,
        supervisor: supervisors.Supervisor,
        *,
        session_dir: Path,
        ip: str = "",
        base_env: dict[str, str],
        logs: LogRelay,
        nursery: trio.Nursery,
        on_change: Callable[[], None],
        on_exit: Callable[[Worker], None],
        zygote: supervisors.Zygote | None = None,
    ) -> None:
        self.sup = supervisor
        self.zygote = zygote
        self.ip = ip
        self.session_dir = session_dir
        self.base_env = base_env
        self.logs = logs
        self.nursery = nursery
        self.on_change = on_change
        self.on_exit = on_exit
        self.workers: dict[bytes, Worker] = {}
        self._by_name: dict[str, Worker] = {}
        self.failures: dict[str, tuple[int, str]] = {}
        self.exits: History[bytes, str] = History(EXITS_KEPT)

    def take_idle(self, key: str) -> Worker | None:
        """An idle worker for this environment, if any (the longest idle first)."""
        idle = [w for w in self.workers.values() if w.state == "idle" and w.key == key]
        return min(idle, key=lambda w: w.idle_since, default=None)

    def starting(self, key: str) -> int:
        return sum(1 for w in self.workers.values() if w.state == "starting" and w.key == key)

    def count(self, key: str | None = None) -> int:
        return sum(1 for w in self.workers.values() if w.state != "dead" and (key is None or w.key == key))

    def start(self, env: dict[str, str]) -> None:
        """Start one worker for ``env`` in the background."""
        worker = Worker(env)
        self.workers[worker.worker_id] = worker
        self._by_name[worker.name] = worker
        self.nursery.start_soon(self._start, worker)

    async def _start(self, worker: Worker) -> None:
        spec = supervisors.ChildSpec(
            id=worker.name,
            start=lambda: self._make_child(worker),
            restart="temporary",
            shutdown=WORKER_SHUTDOWN,
            start_timeout=WORKER_START_TIMEOUT,
        )
        try:
            await self.sup.start_child(spec)
        except (supervisors.StartError, RuntimeError) as exc:
            reason = exc.exit.reason if isinstance(exc, supervisors.StartError) else str(exc)
            count = self.failures.get(worker.key, (0, ""))[0] + 1
            self.failures[worker.key] = (count, reason)
            self._dead(worker, f"failed to start: {reason}")
            return
        self.failures.pop(worker.key, None)
        assert worker.child is not None
        worker.core = worker.child.ready_info.get("core", "")
        worker.exec = worker.child.ready_info.get("exec", "")
        if worker.state == "starting":
            worker.state = "idle"
            worker.idle_since = trio.current_time()
            self.on_change()

    def _make_child(self, worker: Worker) -> supervisors.Child:
        worker.child = self.make_process(worker.worker_id, worker.env, worker.name)
        return worker.child

    def make_process(
        self, worker_id: bytes, extra_env: dict[str, str], name: str, *, actor: bool = False
    ) -> supervisors.ProcessChild | supervisors.ForkedChild:
        """A worker process: forked from the zygote (milliseconds) or, without one, exec'd.

        Its output is logged from the moment it exists, so a failed start leaves a trace.
        """
        runtime_env = {k: v for k, v in extra_env.items() if k != CUDA_VISIBLE_DEVICES}  # GPUs are its own
        env = {
            **self.base_env,
            **extra_env,
            RUNTIME_ENV_KEYS_ENV: runtime_env_keys(runtime_env),
            "ACTORLIB_WORKER_ID": worker_id.hex(),
            "ACTORLIB_NODE_IP": self.ip,
            "PYTHONUNBUFFERED": "1",
        }
        if actor:
            env[ACTOR_PROCESS_ENV] = "1"
        child: supervisors.ProcessChild | supervisors.ForkedChild
        if self.zygote is not None and self.zygote.alive:
            child = supervisors.ForkedChild(
                self.zygote, WORKER_TARGET, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        else:
            child = supervisors.ProcessChild(
                [sys.executable, "-m", "actorlib._worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        child.on_spawned = lambda process: self.pump_logs(name, process)  # type: ignore[arg-type]
        return child

    def pump_logs(self, name: str, child: supervisors.ProcessChild | supervisors.ForkedChild) -> None:
        assert child.stdout is not None and child.stderr is not None and child.pid is not None
        self.nursery.start_soon(self.logs.pump, name, child.pid, "out", child.stdout)
        self.nursery.start_soon(self.logs.pump, name, child.pid, "err", child.stderr)

    def by_name(self, name: str) -> Worker | None:
        """The live worker whose supervisor child id is ``name`` (``w-<id>``)."""
        return self._by_name.get(name)

    def gave_up(self, key: str) -> str | None:
        """The last start failure, if this environment failed to start too often in a row."""
        count, reason = self.failures.get(key, (0, ""))
        return reason if count >= START_FAILURES_TO_GIVE_UP else None

    def on_event(self, event: supervisors.Event) -> None:
        """The pool supervisor's event listener: notices worker exits."""
        if event.type not in ("exited", "stopped"):
            return
        worker = self._by_name.get(event.path.rsplit("/", 1)[-1])
        if worker is not None and event.exit is not None:
            self._dead(worker, event.exit.reason)

    def _dead(self, worker: Worker, reason: str) -> None:
        if worker.state == "dead":
            return
        worker.state = "dead"
        worker.exit_reason = reason
        self.exits.add(worker.worker_id, reason)
        self.workers.pop(worker.worker_id, None)
        self._by_name.pop(worker.name, None)
        worker.exited.set()
        self.on_exit(worker)
        self.on_change()

    def stop(self, worker: Worker, reason: str) -> None:
        """Stop a worker in the background (it is dead to the pool at once)."""
        if worker.state == "dead":
            return
        name = worker.name
        self._dead(worker, reason)
        self.nursery.start_soon(self._terminate, name, reason)

    async def _terminate(self, name: str, reason: str) -> None:
        try:
            await self.sup.terminate_child(name, reason)
        except (LookupError, RuntimeError):
            pass  # already gone, or the pool is shutting down

    async def exit_reason(self, worker_id: bytes, timeout: float) -> str:
        """Why a worker exited, waiting up to ``timeout`` for it to be reaped."""
        worker = self.workers.get(worker_id)
        if worker is not None:
            with trio.move_on_after(timeout):
                await worker.exited.wait()
        return self.exits.get(worker_id) or "unknown (it may still be running)"

    def reap_idle(self, keep: dict[str, int], idle_timeout: float) -> None:
        """Stop idle workers beyond ``keep[env]`` that have idled ``idle_timeout`` seconds."""
        now = trio.current_time()
        kept: dict[str, int] = {}
        for worker in sorted(self.workers.values(), key=lambda w: -w.idle_since):
            if worker.state != "idle":
                continue
            kept[worker.key] = kept.get(worker.key, 0) + 1
            if kept[worker.key] > keep.get(worker.key, 0) and now - worker.idle_since >= idle_timeout:
                self.stop(worker, "idle")
