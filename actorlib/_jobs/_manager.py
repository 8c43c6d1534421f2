"""The job manager: places, stops and forgets jobs, keeps their records, and reads their logs.

Each job's entrypoint runs on a node, under that node's supervisor
(``_node._entrypoints``): the head node unless the job asks for entrypoint
resources, else a node that has them free (the job stays PENDING until one
has; it fails at once if no node ever could). The manager sends the node a
StartJob and learns what became of the entrypoint from the node's reports;
logs are read from the node that writes them. Records live in the head's
state store and survive a head restart; the manager itself is a supervised
task whose inputs wait in a queue, so a crash of it loses neither an
entrypoint nor a report.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, AsyncContextManager, Protocol

import msgspec
import trio

from .. import _ids
from .._node import _job_logs
from .._node import _resources as res
from .._runtime_env import PackageStore, package_name
from .._wire import EntrypointState, JobSpec, NodeView
from . import _logs
from ._records import (
    ENTRYPOINT_START_ERROR,
    PENDING,
    RUNNING,
    RUNTIME_ENV_ERROR,
    START_TIMEOUT,
    SUPERVISOR_DIED,
    UNSCHEDULABLE,
    JobError,
    JobRecord,
    JobSubmitRequest,
    ended,
    failed,
    now_ms,
    record_of,
    running,
    start_timeout_message,
    waiting,
)
from ._scheduling import pick_node

log = logging.getLogger("actorlib.jobs")

STOP_TIMEOUT = 3.0  # seconds between SIGTERM and SIGKILL of a stopped job's process group
START_TIMEOUT_S = 900.0  # a job PENDING this long fails (Ray's RAY_JOB_START_TIMEOUT_SECONDS default)
PLACE_PERIOD = 0.5  # seconds between looks for room while jobs wait for resources
MAX_TRIES = 3  # times one report may crash the manager before it is dropped


class JobStore(Protocol):
    """What the manager needs of the head's state store (rows of encoded records)."""

    def save_job(self, submission_id: str, record: bytes) -> None: ...
    def forget_job(self, submission_id: str) -> None: ...
    def jobs(self) -> list[bytes]: ...


class JobNode(Protocol):
    """A node as the manager uses it: the head's own NodeService, or a RemoteNode proxy."""

    node_id: bytes

    def view(self) -> NodeView: ...
    def start_job(self, spec: JobSpec, report: Callable[[EntrypointState], None]) -> None: ...
    def stop_job(self, submission_id: str, reason: str) -> None: ...
    def forget_job(self, submission_id: str) -> None: ...


class NodeDirectory(Protocol):
    """The head's registry of nodes."""

    def nodes(self) -> list[Any]: ...
    def views(self, dead: bool = False) -> list[NodeView]: ...
    def node_types(self) -> list[dict[str, float]]: ...  # what the autoscaler may add


class JobManager:
    """Every job of the cluster. One instance lives as long as the head process.

    ``node_id`` is the head node's (hex): what ran there died with an earlier head.
    ``recovery_grace``: after a head restart, how long nodes get to register again
    and claim the entrypoints they run.
    """

    def __init__(
        self,
        *,
        session_dir: Path,
        state: JobStore,
        packages: PackageStore,
        nodes: NodeDirectory,
        token: str,
        node_id: str = "",
        stop_timeout: float = STOP_TIMEOUT,
        start_timeout: float = START_TIMEOUT_S,
        recovery_grace: float = 0.0,
    ) -> None:
        self.logs_dir = session_dir / "logs"
        self.state = state
        self.packages = packages
        self.nodes = nodes
        self.token = token  # the cluster's: log files are read from their nodes' services
        self.node_id = node_id
        self.stop_timeout = stop_timeout
        self.start_timeout = start_timeout
        self.recovery_grace = recovery_grace
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(JobRecord)
        self._records: dict[str, JobRecord] = {}
        self._ended: dict[str, trio.Event] = {}
        self._stopping: set[str] = set()
        self._starting: dict[str, tuple[bytes, dict[str, float]]] = {}  # sent to a node, not yet answered
        self._refused: dict[str, float] = {}  # refused by a node whose view was behind: not again before then
        self._unclaimed: set[str] = set()  # on other nodes when the head restarted: claimed when they register
        self._reloaded: set[str] = set()  # PENDING when the head restarted: nodes may not have registered yet
        self._inbox: deque[tuple[str, bytes, Any]] = deque()  # node reports, handled by the manager's task
        self._tries = 0
        self._wakeup = trio.Event()
        self._recovered_at = math.inf  # when nodes have had their chance to claim entrypoints
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

    async def logs(self, job_or_submission_id: str) -> str:
        """Everything the job printed so far (with its supervisor's lines), read from the node
        that has its log file, through that node's service. Raises JobError(404)."""
        async with self._open_log(self._known(job_or_submission_id).submission_id) as read:
            return await _logs.read_all(read)

    async def follow(self, job_or_submission_id: str, send: Callable[[str], Awaitable[object]]) -> None:
        """``send`` the job's log from the start, as it is written, until the job is finished.

        Raises JobError(404) for an unknown job; cancel it to stop following.
        """
        sid = self._known(job_or_submission_id).submission_id

        def finished() -> bool:
            current = self._records.get(sid)
            return current is None or current.terminal

        async with self._open_log(sid) as read:
            await _logs.follow(read, send, finished, lambda: self._ended_event(sid))

    def waiting_shapes(self) -> list[dict[str, float]]:
        """The entrypoint resources of the jobs not placed yet (demand for the autoscaler)."""
        return [
            dict(r.resources) for r in self._records.values() if r.status == PENDING and r.driver_node_id is None and r.resources
        ]

    # ---- requests -----------------------------------------------------------------------

    def submit(self, request: JobSubmitRequest) -> str:
        """Record a job (PENDING) for the manager to place; return its submission id.

        Raises JobError(400) for bad fields, a missing package or a duplicate submission id.
        """
        record = record_of(request)
        sid = record.submission_id
        if sid in self._records:
            raise JobError(400, f"Job with submission_id {sid} already exists. Please use a different submission_id.")
        for uri in [record.runtime_env.get("working_dir"), *record.runtime_env.get("py_modules", [])]:
            if uri and not self.packages.has(package_name(uri)):
                raise JobError(400, f"runtime_env package {uri} does not exist: upload it first (PUT /api/packages/...)")
        self._save(record)
        self._wake()
        return sid

    def stop(self, job_or_submission_id: str) -> bool:
        """Ask a job to stop; False if it had already finished. Raises JobError(404)."""
        record = self._known(job_or_submission_id)
        if record.terminal:
            return False
        sid = record.submission_id
        if sid not in self._stopping:
            self._stopping.add(sid)
            node = self._node(record.driver_node_id)
            if node is not None:
                node.stop_job(sid, "stopped by request")  # the node writes it in the log, and reports the end
            self._wake()  # one not placed yet stops at once
        return True

    def delete(self, job_or_submission_id: str) -> bool:
        """Forget a finished job (its record, and its log on its node). Raises JobError: 404, or 400 if it runs."""
        record = self._known(job_or_submission_id)
        if not record.terminal:
            raise JobError(
                400,
                f"Attempted to delete job with id '{record.submission_id}', but it is in a non-terminal "
                f"state {record.status}. Stop it first.",
            )
        sid = record.submission_id
        self.state.forget_job(sid)
        del self._records[sid]
        self._ended.pop(sid, None)
        node = self._node(record.driver_node_id or self.node_id)
        if node is not None:
            node.forget_job(sid)
        return True

    def driver_registered(self, submission_id: str, job_id: str, node_id: str) -> None:
        """A driver started by job ``submission_id`` called init(): its work is that job's."""
        record = self._records.get(submission_id)
        if record is not None and not record.terminal and record.job_id is None:
            self._save(msgspec.structs.replace(record, job_id=job_id, driver_node_id=record.driver_node_id or node_id))

    # ---- what nodes report (from the head service's tasks: queued for the manager's) ------------

    def entrypoint_reported(self, node_id: bytes, state: EntrypointState) -> None:
        self._post("state", node_id, state)

    def node_joined(self, node_id: bytes, states: list[EntrypointState]) -> None:
        """A node registered, with the entrypoints it runs (or whose end it could not report yet)."""
        self._post("joined", node_id, states)

    def node_died(self, node_id: bytes, reason: str) -> None:
        self._post("died", node_id, reason)

    def _post(self, kind: str, node_id: bytes, payload: Any) -> None:
        self._inbox.append((kind, node_id, payload))
        self._wake()

    # ---- one incarnation (a supervised task child of the head's `jobs` subtree) ----------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Place jobs and handle node reports until cancelled. A restarted incarnation carries on
        where the last stopped: records, queued reports and placements are the manager's, and
        the entrypoints run under their nodes' supervisors."""
        if self._recovered_at == math.inf:
            self._recovered_at = trio.current_time() + self.recovery_grace
        task_status.started()
        while True:
            self._handle_inbox()
            self._place_pending()
            self._fail_unclaimed()
            pending = any(r.status == PENDING for r in self._records.values()) or self._unclaimed
            with trio.move_on_after(PLACE_PERIOD if pending else math.inf):
                await self._wakeup.wait()
            self._wakeup = trio.Event()

    def _wake(self) -> None:
        self._wakeup.set()

    def _handle_inbox(self) -> None:
        # A report leaves the queue once handled: if handling it crashes the manager, the next
        # incarnation tries it again (MAX_TRIES times, then it is dropped and logged).
        while self._inbox:
            kind, node_id, payload = self._inbox[0]
            self._tries += 1
            if self._tries > MAX_TRIES:
                log.error("dropping a %s report from node %s that failed %d times", kind, _ids.short(node_id), MAX_TRIES)
            elif kind == "state":
                self._apply(node_id, payload)
            elif kind == "joined":
                self._joined(node_id, payload)
            else:
                self._died(node_id, payload)
            self._inbox.popleft()
            self._tries = 0

    # ---- placing jobs ---------------------------------------------------------------------------

    def _place_pending(self) -> None:
        views = self.nodes.views()
        live = {node.node_id: node for node in self.nodes.nodes()}
        held: dict[bytes, dict[str, float]] = {}
        for node_id, shape in self._starting.values():
            res.add(held.setdefault(node_id, {}), shape)
        for record in self.list_jobs():
            sid = record.submission_id
            if record.status != PENDING or record.driver_node_id is not None or sid in self._starting:
                continue
            if self._refused.get(sid, -math.inf) > trio.current_time():
                continue
            if sid in self._stopping:
                self._note(sid, f"Job {sid} was stopped before it started.")
                self._finish(ended(record, stopped=True, code=None, log_tail=""))
                continue
            choice = pick_node(record.resources, views, held, self.nodes.node_types())
            node = live.get(choice.node_id) if choice.node_id is not None else None
            if node is not None:
                self._place(record, node)
                res.add(held.setdefault(node.node_id, {}), record.resources)
            elif choice.infeasible and (sid not in self._reloaded or trio.current_time() >= self._recovered_at):
                self._fail_before_start(record, f"Job supervisor actor could not be scheduled: {choice.infeasible}", UNSCHEDULABLE)
            elif now_ms() - record.start_time > self.start_timeout * 1000:
                self._fail_before_start(record, start_timeout_message(record, self.start_timeout), START_TIMEOUT)
            elif record.message != (updated := waiting(record, choice.waiting or choice.infeasible)).message:
                self._save(updated)

    def _place(self, record: JobRecord, node: JobNode) -> None:
        sid = record.submission_id
        node_id = node.node_id
        self._save(msgspec.structs.replace(record, driver_node_id=node_id.hex()))
        self._starting[sid] = (node_id, dict(record.resources))
        spec = JobSpec(
            submission_id=sid, entrypoint=record.entrypoint, runtime_env=record.runtime_env,
            resources=record.resources, stop_timeout=self.stop_timeout,
        )  # fmt: skip
        log.info("job %s: its entrypoint goes to node %s", sid, _ids.short(node_id))
        node.start_job(spec, lambda state: self.entrypoint_reported(node_id, state))

    def _fail_before_start(self, record: JobRecord, message: str, error_type: str) -> None:
        self._note(record.submission_id, message)
        self._finish(failed(record, message, error_type))

    # ---- what became of entrypoints ------------------------------------------------------------

    def _apply(self, node_id: bytes, state: EntrypointState) -> None:
        sid = state.submission_id
        record = self._records.get(sid)
        if record is None or record.terminal or record.driver_node_id != node_id.hex():
            if state.state == "RUNNING":  # a job the head has given up on (or never knew): stop it there
                node = self._node(node_id.hex())
                if node is not None:
                    node.stop_job(sid, "the job manager has no such job running on this node")
            return
        self._starting.pop(sid, None)
        kind = state.state
        if kind == "RUNNING":
            if record.status == PENDING:
                self._save(running(record, state.pid))
            node = self._node(node_id.hex())
            if sid in self._stopping and node is not None:  # asked before its node could hear it
                node.stop_job(sid, "stopped by request")
        elif kind == "REFUSED":  # its view of the node was behind: place it again
            log.info("job %s: node %s refused its entrypoint (%s)", sid, _ids.short(node_id), state.error)
            self._refused[sid] = trio.current_time() + PLACE_PERIOD  # its next heartbeat will tell
            self._save(msgspec.structs.replace(record, driver_node_id=None))
        elif kind == "EXITED":
            stopped = state.stopped or sid in self._stopping
            self._finish(ended(record, stopped=stopped, code=state.code, log_tail=state.log_tail))
        elif kind in ("SETUP_FAILED", "START_FAILED"):
            self._finish(failed(record, state.error, RUNTIME_ENV_ERROR if kind == "SETUP_FAILED" else ENTRYPOINT_START_ERROR))
        else:  # LOST
            self._finish(failed(record, f"Job driver died: {state.error}.", SUPERVISOR_DIED))

    def _joined(self, node_id: bytes, states: list[EntrypointState]) -> None:
        for state in states:
            self._apply(node_id, state)
        claimed = {state.submission_id for state in states}
        for record in list(self._records.values()):
            sid = record.submission_id
            if record.terminal or record.driver_node_id != node_id.hex() or sid in claimed or sid in self._starting:
                continue
            self._unclaimed.discard(sid)
            if record.status == RUNNING:
                self._finish(failed(record, f"Job driver died: {_where(node_id, self.nodes)} no longer runs its entrypoint.", SUPERVISOR_DIED))
            else:  # it never started there: place it again
                self._save(msgspec.structs.replace(record, driver_node_id=None))
        self._unclaimed -= claimed

    def _died(self, node_id: bytes, reason: str) -> None:
        for record in list(self._records.values()):
            if not record.terminal and record.driver_node_id == node_id.hex():
                self._starting.pop(record.submission_id, None)
                self._unclaimed.discard(record.submission_id)
                message = f"Job driver died: its node {_where(node_id, self.nodes)}, where the entrypoint ran, died ({reason})."
                self._finish(failed(record, message, SUPERVISOR_DIED))

    def _fail_unclaimed(self) -> None:
        if not self._unclaimed or trio.current_time() < self._recovered_at:
            return
        for sid in sorted(self._unclaimed):
            record = self._records.get(sid)
            if record is not None and not record.terminal:
                where = _where(bytes.fromhex(record.driver_node_id or ""), self.nodes)
                message = f"Job driver died: its node {where} did not come back after the head restarted."
                self._finish(failed(record, message, SUPERVISOR_DIED))
        self._unclaimed.clear()

    # ---- logs --------------------------------------------------------------------------------

    def _open_log(self, sid: str) -> AsyncContextManager[_logs.Read]:
        """``read(offset)`` of the job's log, from the node that has it (the head node while the
        job is not placed), through that node's service."""

        def where() -> _logs.Where | None:
            current = self._records.get(sid)
            if current is None:
                return None  # deleted meanwhile
            node_hex = current.driver_node_id or self.node_id
            node = self._node(node_hex)
            address = node.view().address if node is not None else ""
            return _logs.Where(address, _where(bytes.fromhex(node_hex), self.nodes), current.terminal)

        return _logs.open_log(where, self.token, _job_logs.log_path(self.logs_dir, sid).name)

    def _note(self, sid: str, text: str) -> None:
        """A line of the manager's in the log of a job that never reached a node (on the head node)."""
        _job_logs.write_line(_job_logs.log_path(self.logs_dir, sid), text)

    # ---- records ----------------------------------------------------------------------------

    def _finish(self, record: JobRecord) -> None:
        sid = record.submission_id
        self._stopping.discard(sid)
        self._starting.pop(sid, None)
        self._refused.pop(sid, None)
        self._unclaimed.discard(sid)
        if sid in self._records:
            self._save(record)
        self._ended_event(sid).set()
        self._wake()  # what it held is free for a waiting job
        log.info("job %s %s", sid, record.status)

    def _save(self, record: JobRecord) -> None:
        self.state.save_job(record.submission_id, self._encoder.encode(record))  # first: if it fails, nothing changed
        self._records[record.submission_id] = record

    def _load(self) -> None:
        """Records of an earlier head: what ran on its node died with it; what ran elsewhere waits
        for its node to register again and claim it."""
        for row in self.state.jobs():
            try:
                record = self._decoder.decode(row)
            except msgspec.DecodeError:
                log.warning("skipping an unreadable job record")
                continue
            self._records[record.submission_id] = record
        for record in list(self._records.values()):
            node = record.driver_node_id
            if record.terminal:
                continue
            if record.status == PENDING and node is None:
                self._reloaded.add(record.submission_id)  # placed again, once nodes had a chance to register
                continue
            if node is None or node == self.node_id:
                message = "Job driver died: the head restarted while the job ran, and its entrypoint (on the head node) died with it."
                _job_logs.write_line(_job_logs.log_path(self.logs_dir, record.submission_id), message)
                self._finish(failed(record, message, SUPERVISOR_DIED))
            else:
                self._unclaimed.add(record.submission_id)

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

    def _node(self, node_hex: str | None) -> JobNode | None:
        """The live node with this id (hex), if any."""
        if not node_hex:
            return None
        return next((node for node in self.nodes.nodes() if node.node_id.hex() == node_hex), None)


def _where(node_id: bytes, nodes: NodeDirectory) -> str:
    """``1a2b3c4d (127.0.0.2)``: a node's short id and IP, for messages."""
    view = next((v for v in nodes.views(dead=True) if v.node_id == node_id), None)
    return f"{_ids.short(node_id)} ({view.ip})" if view is not None else _ids.short(node_id) if node_id else "(unknown)"
