"""A node's bounded history of the tasks and actor calls its workers ran.

Workers send TaskEvents about once a second; the node keeps the last
``MAX_FINISHED`` finished records (oldest dropped first) plus what each live
worker runs now. A worker that dies mid-call turns its running records into
FAILED ones naming the exit.
"""

from __future__ import annotations

import os
import time
from collections import deque

from .._state import LatencyHistograms, TaskState
from .._wire import TaskEvents, TaskRecord

MAX_FINISHED = int(os.environ.get("ACTORLIB_TASK_HISTORY", "10000"))


class TaskHistory:
    """Finished and running calls of one node's workers (records stay as received until queried)."""

    def __init__(self, node_id: str, max_finished: int = MAX_FINISHED) -> None:
        self.node_id = node_id
        self._finished: deque[tuple[TaskRecord, bytes, int]] = deque(maxlen=max_finished)
        self._running: dict[bytes, tuple[int, list[TaskRecord]]] = {}
        # Since the node started, whatever the bounded history forgot (``/metrics``, the plots).
        self.finished_total = 0
        self.failed_total = 0
        self.latency = LatencyHistograms()

    def add(self, events: TaskEvents) -> None:
        for record in events.done:
            self._finished.append((record, events.worker_id, events.pid))
            self._count(record)
        if events.running:
            self._running[events.worker_id] = (events.pid, events.running)
        else:
            self._running.pop(events.worker_id, None)

    def running(self, worker_id: bytes) -> list[TaskRecord]:
        return self._running.get(worker_id, (0, []))[1]

    def worker_gone(self, worker_id: bytes, reason: str, leased: tuple[str, str] | None = None, pid: int = 0) -> None:
        """A worker exited: what it was running failed with it.

        ``leased``: (function name, job) of the lease it held. A worker that dies before its
        first report (a task that kills its process at once) is still listed, as a FAILED
        call of that function with no task id.
        """
        pid, records = self._running.pop(worker_id, (pid, []))
        if not records and leased is not None and not reason.startswith("stopped"):
            now = time.time()
            records = [TaskRecord(b"", leased[0], leased[1], b"", 0, now, 0.0, "")]
        for record in records:
            failed = TaskRecord(
                record.task_id, record.name, record.job_id, record.actor_id, record.attempt, record.start,
                record.start, f"WorkerCrashedError: its worker (pid {pid}) exited: {reason}",
            )  # fmt: skip
            self._finished.append((failed, worker_id, pid))
            self.failed_total += 1  # its duration is unknown: no latency sample

    def _count(self, record: TaskRecord) -> None:
        if record.error:
            self.failed_total += 1
        else:
            self.finished_total += 1
        self.latency.add("ACTOR_TASK" if record.actor_id else "NORMAL_TASK", record.name, record.end - record.start)

    def running_count(self) -> int:
        return sum(len(records) for _, records in self._running.values())

    def reap(self, live: set[bytes], reasons: dict[bytes, str]) -> None:
        """Forget running records of workers that are no longer alive (their exit went unseen)."""
        for worker_id in [w for w in self._running if w not in live]:
            self.worker_gone(worker_id, reasons.get(worker_id, "exited"))

    def states(self) -> list[TaskState]:
        """Running calls first, then finished ones, newest first."""
        out = []
        for worker_id, (pid, records) in self._running.items():
            out += [self._state(record, worker_id, pid) for record in records]
        out += [self._state(*entry) for entry in reversed(self._finished)]
        return out

    def _state(self, record: TaskRecord, worker_id: bytes, pid: int) -> TaskState:
        if record.end == 0.0:
            state, end = "RUNNING", None
        else:
            state, end = ("FAILED" if record.error else "FINISHED"), record.end
        return TaskState(
            task_id=record.task_id.hex(), name=record.name, state=state,
            type="ACTOR_TASK" if record.actor_id else "NORMAL_TASK", job_id=record.job_id,
            actor_id=record.actor_id.hex(), node_id=self.node_id, worker_id=worker_id.hex(), worker_pid=pid,
            attempt=record.attempt, start_time=record.start, end_time=end, error_message=record.error,
            traceback=record.traceback,
        )  # fmt: skip
