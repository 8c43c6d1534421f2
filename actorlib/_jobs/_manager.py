"""The job manager: submits, runs, stops and forgets jobs, and keeps their records.

Each job's entrypoint is a shell command run by the ``supervisors`` exec shim
as a temporary child of the ``entrypoints`` pool, in its own process group;
stopping it sends SIGTERM to the whole group, then SIGKILL after
``stop_timeout``. Records live in the head's state store: a job that was not
finished when its head (or this manager) went away is FAILED on the next start.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import msgspec
import trio

import supervisors

from .._environ import ADDRESS_ENV, JOB_RUNTIME_ENV, SUBMISSION_ID_ENV, TOKEN_FILE_ENV
from .._runtime_env import PackageStore, ensure_unpacked, package_name
from . import _logs
from ._records import (
    ENTRYPOINT_START_ERROR,
    LOG_TAIL_CHARS,
    RUNTIME_ENV_ERROR,
    SUPERVISOR_DIED,
    UNSCHEDULABLE,
    JobError,
    JobRecord,
    JobSubmitRequest,
    ended,
    failed,
    record_of,
    running,
)

log = logging.getLogger("actorlib.jobs")

STOP_TIMEOUT = 3.0  # seconds between SIGTERM and SIGKILL of a stopped job's process group


class JobStore(Protocol):
    """What the manager needs of the head's state store (rows of encoded records)."""

    def save_job(self, submission_id: str, record: bytes) -> None: ...
    def forget_job(self, submission_id: str) -> None: ...
    def jobs(self) -> list[bytes]: ...


class JobManager:
    """Every job of the cluster. One instance lives as long as the head process.

    ``head_address`` and ``head_resources`` are read when a job starts (the
    head's address once bound; the head node's total resources).
    """

    def __init__(
        self,
        *,
        session_dir: Path,
        state: JobStore,
        packages: PackageStore,
        token_path: Path,
        head_address: Callable[[], str],
        head_resources: Callable[[], dict[str, float]] = dict,
        node_id: str = "",
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.session_dir = session_dir
        self.logs_dir = session_dir / "logs"
        self.cache = session_dir / "runtime_resources"
        self.state = state
        self.packages = packages
        self.token_path = token_path
        self.head_address = head_address
        self.head_resources = head_resources
        self.node_id = node_id
        self.stop_timeout = stop_timeout
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(JobRecord)
        self._records: dict[str, JobRecord] = {}
        self._ended: dict[str, trio.Event] = {}
        self._stopping: set[str] = set()
        self._children: dict[str, supervisors.ProcessChild] = {}
        self._pool: supervisors.Supervisor | None = None
        self._nursery: trio.Nursery | None = None
        self._load()

    # ---- the state API (also what `actorlib list jobs` shows) ----------------------------

    def list_jobs(self) -> list[JobRecord]:
        """Every job's record, oldest first."""
        return sorted(self._records.values(), key=lambda r: (r.start_time, r.submission_id))

    def get(self, job_or_submission_id: str) -> JobRecord | None:
        """A job by submission id, or by the actorlib job id its driver registered with."""
        record = self._records.get(job_or_submission_id)
        if record is None:
            record = next((r for r in self._records.values() if r.job_id == job_or_submission_id), None)
        return record

    def logs(self, job_or_submission_id: str) -> str:
        """Everything the job printed so far (with the manager's lines). Raises JobError(404)."""
        return _logs.read_all(self._log(self._known(job_or_submission_id).submission_id))

    async def follow(self, job_or_submission_id: str) -> AsyncIterator[str]:
        """The job's log from the start, as it is written, until the job is finished."""
        sid = self._known(job_or_submission_id).submission_id

        def finished() -> bool:
            record = self._records.get(sid)
            return record is None or record.terminal

        async for chunk in _logs.follow(self._log(sid), finished, lambda: self._ended_event(sid)):
            yield chunk

    # ---- requests -----------------------------------------------------------------------

    def submit(self, request: JobSubmitRequest) -> str:
        """Record a job and start it in the background; return its submission id.

        Raises JobError: 400 for bad fields or a duplicate submission id, 503 when
        the manager is not running.
        """
        record = record_of(request)
        sid = record.submission_id
        if sid in self._records:
            raise JobError(400, f"Job with submission_id {sid} already exists. Please use a different submission_id.")
        for uri in [record.runtime_env.get("working_dir"), *record.runtime_env.get("py_modules", [])]:
            if uri and not self.packages.has(package_name(uri)):
                raise JobError(400, f"runtime_env package {uri} does not exist: upload it first (PUT /api/packages/...)")
        if self._nursery is None or self._pool is None:
            raise JobError(503, "the job manager is restarting; try again in a moment")
        self._save(record)
        self._log(sid).unlink(missing_ok=True)
        self._nursery.start_soon(self._run_job, sid, self._pool)
        return sid

    def stop(self, job_or_submission_id: str) -> bool:
        """Ask a job to stop; False if it had already finished. Raises JobError(404)."""
        record = self._known(job_or_submission_id)
        if record.terminal:
            return False
        sid = record.submission_id
        if sid not in self._stopping:
            self._stopping.add(sid)
            _logs.write_line(self._log(sid), f"Stopping job {sid} (SIGTERM to its process group).")
            if self._nursery is not None and self._pool is not None:
                self._nursery.start_soon(self._terminate, self._pool, sid)
        return True

    def delete(self, job_or_submission_id: str) -> bool:
        """Forget a finished job (its record and log). Raises JobError: 404, or 400 if it still runs."""
        record = self._known(job_or_submission_id)
        if not record.terminal:
            raise JobError(
                400,
                f"Attempted to delete job with id '{record.submission_id}', but it is in a non-terminal "
                f"state {record.status}. Stop it first.",
            )
        sid = record.submission_id
        del self._records[sid]
        self._ended.pop(sid, None)
        self.state.forget_job(sid)
        self._log(sid).unlink(missing_ok=True)
        return True

    def driver_registered(self, submission_id: str, job_id: str, node_id: str) -> None:
        """A driver started by job ``submission_id`` called init(): its work is that job's."""
        record = self._records.get(submission_id)
        if record is not None and not record.terminal and record.job_id is None:
            self._save(msgspec.structs.replace(record, job_id=job_id, driver_node_id=node_id))

    # ---- one incarnation (a supervised child of the head's `jobs` subtree) -------------------

    def attach(self, pool: supervisors.Supervisor) -> None:
        """Use ``pool`` (the ``entrypoints`` supervisor) for the entrypoints from now on."""
        self._pool = pool

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled; jobs of an earlier incarnation died with it (FAILED)."""
        self._fail_unfinished("the job manager restarted while the job ran, and its entrypoint was stopped")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self._fail_unfinished("the cluster stopped while the job ran")

    # ---- running one job ------------------------------------------------------------------

    async def _run_job(self, sid: str, pool: supervisors.Supervisor) -> None:
        record = self._records[sid]
        path = self._log(sid)
        _logs.write_line(path, "Runtime env is setting up.")
        try:
            self._check_resources(record)
            cwd, env = await trio.to_thread.run_sync(self._prepare, record)
        except Exception as exc:
            unschedulable = isinstance(exc, JobError)
            _logs.write_line(path, f"Runtime env setup failed: {exc}")
            self._finish(failed(record, f"Runtime env setup failed: {exc}", UNSCHEDULABLE if unschedulable else RUNTIME_ENV_ERROR))
            return
        if sid in self._stopping:
            self._finish(ended(record, stopped=True, code=None, log_tail=""))
            return
        _logs.write_line(path, f"Running entrypoint for job {sid}: {record.entrypoint}")
        child: list[supervisors.ProcessChild] = []

        def start() -> supervisors.ProcessChild:
            process = supervisors.ProcessChild.command(
                ["/bin/sh", "-c", record.entrypoint], group=True, env=env, cwd=cwd, stdout=path, stderr=path
            )
            child.append(process)
            self._children[sid] = process
            return process

        spec = supervisors.ChildSpec(id=f"job-{sid}", start=start, restart="temporary", shutdown=self.stop_timeout)
        try:
            await pool.start_child(spec)
        except (supervisors.StartError, RuntimeError) as exc:
            reason = exc.exit.reason if isinstance(exc, supervisors.StartError) else str(exc)
            _logs.write_line(path, f"The entrypoint failed to start: {reason}")
            self._finish(failed(record, f"The entrypoint failed to start: {reason}", ENTRYPOINT_START_ERROR))
            return
        self._save(running(self._records[sid], child[0].pid))
        if sid in self._stopping:  # asked while it started
            self._nursery_or_raise().start_soon(self._terminate, pool, sid)
        try:
            exit = await child[0].wait()
        finally:
            self._children.pop(sid, None)
        code = exit.code if exit.code is not None else -(exit.signal or 0)
        stopped = sid in self._stopping
        tail = "" if stopped or code == 0 else await trio.to_thread.run_sync(_logs.read_tail, path, LOG_TAIL_CHARS)
        self._finish(ended(self._records[sid], stopped=stopped, code=code, log_tail=tail))

    def _check_resources(self, record: JobRecord) -> None:
        total = self.head_resources()
        missing = {name: qty for name, qty in record.resources.items() if total.get(name, 0.0) < qty}
        if missing:
            raise JobError(
                400,
                f"the entrypoint asks for {missing}, more than the head node has ({total}); "
                "actorlib runs entrypoints on the head node",
            )

    def _prepare(self, record: JobRecord) -> tuple[str | None, dict[str, str]]:
        """(working directory, environment) of the entrypoint: packages unpacked, env set."""
        runtime_env = record.runtime_env
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
            ADDRESS_ENV: self.head_address(),
            TOKEN_FILE_ENV: str(self.token_path),
            SUBMISSION_ID_ENV: record.submission_id,
            JOB_RUNTIME_ENV: json.dumps(runtime_env),
            "PYTHONUNBUFFERED": "1",
        })  # fmt: skip
        return cwd, env

    def _unpack(self, uri: str) -> Path:
        name = package_name(uri)
        return ensure_unpacked(self.cache, name, lambda: self.packages.path(name))

    async def _terminate(self, pool: supervisors.Supervisor, sid: str) -> None:
        try:
            await pool.terminate_child(f"job-{sid}", "stopped by request")
        except (LookupError, RuntimeError):
            child = self._children.get(sid)  # still starting: the pool may not hold it yet
            if child is not None:
                await child.stop(self.stop_timeout, "stopped by request")
            # else: not started yet; it stops once its runtime env is set up

    def _nursery_or_raise(self) -> trio.Nursery:
        if self._nursery is None:
            raise RuntimeError("the job manager is not running")
        return self._nursery

    # ---- records ----------------------------------------------------------------------------

    def _finish(self, record: JobRecord) -> None:
        self._stopping.discard(record.submission_id)
        if record.submission_id in self._records:
            self._save(record)
        self._ended_event(record.submission_id).set()
        log.info("job %s %s", record.submission_id, record.status)

    def _save(self, record: JobRecord) -> None:
        self._records[record.submission_id] = record
        self.state.save_job(record.submission_id, self._encoder.encode(record))

    def _load(self) -> None:
        for row in self.state.jobs():
            try:
                record = self._decoder.decode(row)
            except msgspec.DecodeError:
                log.warning("skipping an unreadable job record")
                continue
            self._records[record.submission_id] = record
        self._fail_unfinished("the head restarted while the job ran, and its entrypoint (on the head node) died with it")

    def _fail_unfinished(self, why: str) -> None:
        for record in list(self._records.values()):
            if not record.terminal:
                message = f"Job driver died: {why}."
                _logs.write_line(self._log(record.submission_id), message)
                self._finish(failed(record, message, SUPERVISOR_DIED))

    def _ended_event(self, sid: str) -> trio.Event:
        event = self._ended.get(sid)
        if event is None:
            event = self._ended[sid] = trio.Event()
            record = self._records.get(sid)
            if record is None or record.terminal:
                event.set()
        return event

    def _known(self, job_or_submission_id: str) -> JobRecord:
        record = self.get(job_or_submission_id)
        if record is None:
            raise JobError(404, f"Job {job_or_submission_id} does not exist")
        return record

    def _log(self, sid: str) -> Path:
        return _logs.log_path(self.logs_dir, sid)
