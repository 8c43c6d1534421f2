"""What a worker ran: finished tasks and actor calls, sent to its node in batches.

The cost on the call path is a tuple and a dict entry per call; the runtime
thread sends what accumulated about once a second (only when something
changed), so a burst of tiny tasks costs one message per second, not one per
task. Unsent records are bounded: past ``MAX_UNSENT`` the oldest are dropped.
An idle worker's recorder sleeps until the next call (no timer: a thousand idle
actors waking each second cost a core a third of a millisecond each per second),
and sends within a second of it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from .._wire import ErrorValue, TaskEvents, TaskRecord

FLUSH_PERIOD = 1.0
MAX_UNSENT = 10_000
MAX_ERROR = 300
MAX_TRACEBACK = 8000  # characters of a failed call's traceback kept (its end: where it failed)


class TaskRecorder:
    """Thread-safe by construction: the main thread and the runtime thread only append,
    pop and copy (each one operation under the GIL)."""

    def __init__(self, worker_id: bytes, pid: int, send: Callable[[Any], None]) -> None:
        self.worker_id = worker_id
        self.pid = pid
        self._send = send
        self._done: deque[TaskRecord] = deque(maxlen=MAX_UNSENT)
        self._running: dict[bytes, TaskRecord] = {}
        self._sent_running: list[bytes] = []
        self._token: trio.lowlevel.TrioToken | None = None
        self._wake = trio.Event()
        self._asleep = False  # run() waits for the next change: a change wakes it (once)

    def started(self, task_id: bytes, name: str, job_id: str, actor_id: bytes, attempt: int) -> float:
        """Record a call that starts now; returns its start time (wall clock)."""
        start = time.time()
        self._running[task_id] = TaskRecord(task_id, name, job_id, actor_id, attempt, start, 0.0, "")
        if self._asleep:
            self._poke()
        return start

    def finished(self, task_id: bytes, error: str, traceback: str = "") -> None:
        record = self._running.pop(task_id, None)
        if record is not None:
            self._done.append(
                TaskRecord(
                    record.task_id, record.name, record.job_id, record.actor_id, record.attempt, record.start,
                    time.time(), error, traceback,
                )  # fmt: skip
            )
            if self._asleep:
                self._poke()

    def _poke(self) -> None:
        """Wake run() (from any thread): something changed while it slept."""
        self._asleep = False
        token = self._token
        if token is not None:
            try:
                token.run_sync_soon(self._wake.set)
            except trio.RunFinishedError:
                pass  # the runtime is gone: nothing will be sent

    def batch(self) -> TaskEvents | None:
        """What to send now, if anything changed since the last batch."""
        done = []
        while self._done:
            done.append(self._done.popleft())
        running = list(self._running.values())
        ids = [record.task_id for record in running]
        if not done and ids == self._sent_running:
            return None
        self._sent_running = ids
        return TaskEvents(worker_id=self.worker_id, pid=self.pid, done=done, running=running)

    def _changed(self) -> bool:
        return bool(self._done) or [record.task_id for record in list(self._running.values())] != self._sent_running

    async def run(self) -> None:
        """Send batches until cancelled (on the runtime thread)."""
        self._token = trio.lowlevel.current_trio_token()
        while True:
            self._wake = trio.Event()
            self._asleep = True  # before looking: a change from now on pokes (a change before it is seen)
            if not self._changed():
                await self._wake.wait()
            self._asleep = False
            await trio.sleep(FLUSH_PERIOD)
            events = self.batch()
            if events is not None:
                self._send(events)


def error_info(values: list[Any]) -> tuple[str, str]:
    """("", "") when no value is an error; else the first error's type and message, and its
    remote traceback (failure path only)."""
    for value in values:
        if type(value) is ErrorValue:
            from .._serial import unbox

            error = unbox(value)
            cause = getattr(error, "cause", None) or error
            text = f"{type(cause).__name__}: {cause}"
            traceback = str(getattr(error, "traceback_str", "") or "")
            if len(traceback) > MAX_TRACEBACK:
                traceback = "...\n" + traceback[-MAX_TRACEBACK:]
            return (text if len(text) <= MAX_ERROR else text[: MAX_ERROR - 3] + "..."), traceback
    return "", ""
