"""The job entrypoints a node runs: each a supervised process in its own group, holding its resources.

::

    jobs (pool)
    └─ job-<submission id>     the supervisors exec shim ── /bin/sh -c ENTRYPOINT (its own process group)

The head places a job here (StartJob). The node takes the entrypoint's
resources if they are free now (else it answers REFUSED and the head waits),
sets up the job's runtime_env, runs the entrypoint with both streams in
``<session>/logs/job-driver-<id>.log``, and reports RUNNING and the exit
(EntrypointState). A stop sends SIGTERM to the whole group, SIGKILL after
the job's stop timeout. The resources are given back when the entrypoint
has exited. If the node's service stops (its subtree restarts, the node
shuts down), the pool kills every entrypoint and each is reported LOST.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import trio

import supervisors

from .._environ import ADDRESS_ENV, JOB_RUNTIME_ENV, NODE_ID_ENV, SUBMISSION_ID_ENV, TOKEN_FILE_ENV
from .._runtime_env import ensure_unpacked, package_name
from .._wire import EntrypointState, JobSpec
from . import _job_logs
from . import _resources as res
from ._gpus import CUDA_VISIBLE_DEVICES

log = logging.getLogger("actorlib.node")

LOG_TAIL_CHARS = 20_000  # of the log, in the message of a failed job (as Ray)
Reporter = Callable[[EntrypointState], None]


class Ledger(Protocol):
    """The node's resources (its LeaseManager)."""

    available: dict[str, float]
    draining: bool  # the autoscaler is stopping the node: it takes nothing new

    def take_now(self, shape: dict[str, float]) -> list[str] | None: ...
    def give_back(self, shape: dict[str, float], gpu_ids: list[str] = ...) -> None: ...
    def schedule(self) -> None: ...


class _Entrypoint:
    __slots__ = ("spec", "report", "shape", "gpu_ids", "child", "running", "stopping")

    def __init__(self, spec: JobSpec, report: Reporter, shape: dict[str, float], gpu_ids: list[str]) -> None:
        self.spec = spec
        self.report = report
        self.shape = shape
        self.gpu_ids = gpu_ids
        self.child: supervisors.ProcessChild | None = None
        self.running = False  # started and in the pool: a stop terminates it
        self.stopping = False


class EntrypointHost:
    """Starts, stops and watches the job entrypoints of one node (one per node service incarnation).

    ``fetch(name)`` gives a runtime_env package's zip (bytes or path; blocking).
    """

    def __init__(
        self,
        *,
        node_id: str,
        session_dir: Path,
        head_address: str,
        token_path: Path,
        ledger: Ledger,
        nursery: trio.Nursery,
        supervisor: Callable[[], supervisors.Supervisor | None],
        fetch: Callable[[str], bytes | Path],
    ) -> None:
        self.node_id = node_id
        self.logs_dir = session_dir / "logs"
        self.cache = session_dir / "runtime_resources"
        self.head_address = head_address
        self.token_path = token_path
        self.ledger = ledger
        self.nursery = nursery
        self.supervisor = supervisor
        self.fetch = fetch
        self._jobs: dict[str, _Entrypoint] = {}

    # ---- the head's requests ------------------------------------------------------------

    def start(self, spec: JobSpec, report: Reporter) -> None:
        """Run ``spec``'s entrypoint here if its resources are free now; else report REFUSED."""
        sid = spec.submission_id
        if sid in self._jobs:
            return  # asked twice (the head restarted meanwhile): it runs already
        shape = res.normalize(spec.resources)
        gpu_ids = self.ledger.take_now(shape)
        if gpu_ids is None:
            free = res.describe(self.ledger.available) or "nothing"
            error = f"{res.describe(shape)} needed, {free} free" + (" (draining)" if self.ledger.draining else "")
            report(EntrypointState(submission_id=sid, state="REFUSED", error=error))
            return
        job = self._jobs[sid] = _Entrypoint(spec, report, shape, gpu_ids)
        self.nursery.start_soon(self._run, job)

    def stop(self, submission_id: str, reason: str) -> None:
        """Stop an entrypoint (before it starts, or SIGTERM to its group); no-op if unknown here."""
        job = self._jobs.get(submission_id)
        if job is None or job.stopping:
            return
        job.stopping = True
        _job_logs.write_line(self._log(submission_id), f"Stopping job {submission_id} (SIGTERM to its process group): {reason}")
        if job.running:
            self.nursery.start_soon(self._terminate, job, reason)
        # else: it has not started; it is stopped as soon as it has (or before, if it can)

    def forget(self, submission_id: str) -> None:
        """Remove a deleted job's log file."""
        self._log(submission_id).unlink(missing_ok=True)

    def running(self) -> int:
        """How many entrypoints are here (the node is busy while any is)."""
        return len(self._jobs)

    def spec_of(self, child_id: str) -> JobSpec | None:
        """The job whose entrypoint is the ``jobs`` pool's child ``child_id`` (for ``actorlib tree``)."""
        job = self._jobs.get(child_id.removeprefix("job-")) if child_id.startswith("job-") else None
        return job.spec if job is not None else None

    def states(self) -> list[EntrypointState]:
        """What runs here (for the head, when this node registers again)."""
        return [EntrypointState(submission_id=sid, state="RUNNING", pid=_pid(job)) for sid, job in self._jobs.items()]

    def lost(self, why: str) -> None:
        """The node's service is stopping: its pool kills every entrypoint; report them LOST."""
        jobs, self._jobs = self._jobs, {}
        for sid, job in jobs.items():
            job.report(EntrypointState(submission_id=sid, state="LOST", error=why))

    # ---- one entrypoint --------------------------------------------------------------------

    async def _run(self, job: _Entrypoint) -> None:
        outcome = await self._outcome(job)  # cancelled only when the node's service stops: see lost()
        sid = job.spec.submission_id
        if self._jobs.get(sid) is job:
            del self._jobs[sid]
        self.ledger.give_back(job.shape, job.gpu_ids)
        self.ledger.schedule()  # tasks waiting for what it held
        job.report(outcome)

    async def _outcome(self, job: _Entrypoint) -> EntrypointState:
        spec = job.spec
        sid = spec.submission_id
        path = self._log(sid)
        await trio.to_thread.run_sync(lambda: _job_logs.write_line(path, "Runtime env is setting up.", fresh=True))
        try:
            cwd, env = await trio.to_thread.run_sync(self._prepare, job)
        except Exception as exc:
            _job_logs.write_line(path, f"Runtime env setup failed: {exc}")
            return EntrypointState(submission_id=sid, state="SETUP_FAILED", error=f"Runtime env setup failed: {exc}")
        if job.stopping:
            return EntrypointState(submission_id=sid, state="EXITED", stopped=True)
        _job_logs.write_line(path, f"Running entrypoint for job {sid}: {spec.entrypoint}")

        def start() -> supervisors.ProcessChild:
            argv = ["/bin/sh", "-c", spec.entrypoint]
            job.child = supervisors.ProcessChild.command(argv, group=True, env=env, cwd=cwd, stdout=path, stderr=path)
            return job.child

        child = supervisors.ChildSpec(id=f"job-{sid}", start=start, restart="temporary", shutdown=spec.stop_timeout)
        try:
            await self._pool().start_child(child)
        except (supervisors.StartError, RuntimeError) as exc:
            reason = exc.exit.reason if isinstance(exc, supervisors.StartError) else str(exc)
            _job_logs.write_line(path, f"The entrypoint failed to start: {reason}")
            return EntrypointState(submission_id=sid, state="START_FAILED", error=f"The entrypoint failed to start: {reason}")
        assert job.child is not None
        job.running = True
        job.report(EntrypointState(submission_id=sid, state="RUNNING", pid=_pid(job)))
        if job.stopping:  # asked while it started
            self.nursery.start_soon(self._terminate, job, "stopped by request")
        exit = await job.child.wait()
        code = exit.code if exit.code is not None else -(exit.signal or 0)
        failed = not job.stopping and code != 0
        tail = await trio.to_thread.run_sync(_job_logs.read_tail, path, LOG_TAIL_CHARS) if failed else ""
        return EntrypointState(submission_id=sid, state="EXITED", code=code, stopped=job.stopping, log_tail=tail)

    def _prepare(self, job: _Entrypoint) -> tuple[str | None, dict[str, str]]:
        """(working directory, environment) of the entrypoint: packages unpacked, env set. Blocking."""
        runtime_env = job.spec.runtime_env
        paths = []
        cwd = None
        if runtime_env.get("working_dir"):
            cwd = str(self._unpack(runtime_env["working_dir"]))
            paths.append(cwd)
        paths += [str(self._unpack(uri)) for uri in runtime_env.get("py_modules", [])]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERVISORS_")}
        env.update(runtime_env.get("env_vars") or {})
        if os.environ.get("PYTHONPATH"):
            paths.append(os.environ["PYTHONPATH"])
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths)
        env.update({
            ADDRESS_ENV: self.head_address,
            TOKEN_FILE_ENV: str(self.token_path),
            SUBMISSION_ID_ENV: job.spec.submission_id,
            JOB_RUNTIME_ENV: json.dumps(runtime_env),
            NODE_ID_ENV: self.node_id,
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        if job.gpu_ids:
            env[CUDA_VISIBLE_DEVICES] = ",".join(job.gpu_ids)
        return cwd, env

    def _unpack(self, uri: str) -> Path:
        name = package_name(uri)
        return ensure_unpacked(self.cache, name, lambda: self.fetch(name))

    async def _terminate(self, job: _Entrypoint, reason: str) -> None:
        try:
            await self._pool().terminate_child(f"job-{job.spec.submission_id}", reason)
        except (LookupError, RuntimeError):
            pass  # gone already, or the pool is stopping (and stops it)

    def _pool(self) -> supervisors.Supervisor:
        pool = self.supervisor()
        if pool is None:
            raise RuntimeError("this node runs no job entrypoints (its jobs pool is not running)")
        return pool

    def _log(self, submission_id: str) -> Path:
        return _job_logs.log_path(self.logs_dir, submission_id)


def _pid(job: _Entrypoint) -> int:
    return (job.child.pid or 0) if job.child is not None else 0
