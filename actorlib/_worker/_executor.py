"""Runs tasks pushed to this worker, one at a time, on the main thread."""

from __future__ import annotations

import inspect
import queue
import signal
import sys
import threading
import time
from typing import Any

import trio

from .. import _ids
from .._core import Runtime, unpack
from .._serial import FunctionCache, box, box_system, deserialize, serialize
from .._wire import Channel, Inline, PushTask, Stored, TaskDone, Value
from ..exceptions import TaskCancelledError

LOG_MARKER = "\x1factorlib:"


class _Cancelled(BaseException):
    """Raised in the main thread by SIGINT when the running task was cancelled."""


class TaskContext:
    """What get_runtime_context() reports while a task runs."""

    def __init__(self, task: PushTask) -> None:
        self.task_id = task.task_id
        self.name = task.name
        self.job_id = task.job_id


class Executor:
    """The task queue of a worker, drained by its main thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.functions = FunctionCache()
        self.current: TaskContext | None = None
        self._queue: queue.SimpleQueue[tuple[PushTask, Channel] | None] = queue.SimpleQueue()
        self._cancelled: set[bytes] = set()
        self._queued: dict[bytes, tuple[PushTask, Channel]] = {}
        self._lock = threading.Lock()  # orders cancel() against a task starting
        self._main = threading.main_thread().ident
        self._label: tuple[str, str] | None = None
        signal.signal(signal.SIGINT, self._on_sigint)

    # ---- called on the runtime thread ------------------------------------------

    def push(self, task: PushTask, channel: Channel) -> None:
        self.functions.remember(task.fn_id, task.fn_blob)
        self._queued[task.task_id] = (task, channel)
        self._queue.put((task, channel))

    def cancel(self, task_id: bytes) -> None:
        """Interrupt the task if it runs; answer at once (and skip it later) if it waits."""
        with self._lock:
            current = self.current
            if current is not None and current.task_id == task_id:
                self._cancelled.add(task_id)
                signal.pthread_kill(self._main, signal.SIGINT)  # type: ignore[arg-type]
                return
            queued = self._queued.pop(task_id, None)
            if queued is None:
                return
            self._cancelled.add(task_id)
        task, channel = queued
        error = box_system(TaskCancelledError("the task was cancelled before it ran"))
        _reply(channel, TaskDone(task_id=task_id, returns=[error] * task.num_returns))

    def on_channel_lost(self, channel: Channel) -> None:
        pass  # queued tasks of a lost owner are skipped when dequeued (channel.closed)

    def stop(self) -> None:
        self._queue.put(None)

    # ---- the main thread -----------------------------------------------------------

    def run_forever(self) -> None:
        while (item := self._queue.get()) is not None:
            task, channel = item
            if not self._begin(task, channel):
                continue
            returns, elapsed = self._execute(task)
            try:
                self.rt.soon(_reply, channel, TaskDone(task_id=task.task_id, returns=returns, elapsed=elapsed))
            except Exception:
                return  # the runtime is shutting down

    def _on_sigint(self, signum: int, frame: Any) -> None:
        current = self.current
        if current is not None and current.task_id in self._cancelled:
            raise _Cancelled()

    def _begin(self, task: PushTask, channel: Channel) -> bool:
        """Make ``task`` current unless it was cancelled (or its owner left) while queued."""
        with self._lock:
            self._queued.pop(task.task_id, None)
            if channel.closed or task.task_id in self._cancelled:
                self._cancelled.discard(task.task_id)
                return False
            self.current = TaskContext(task)
            return True

    def _execute(self, task: PushTask) -> tuple[list[Value], float]:
        self.rt.identity.job_id = task.job_id
        self._mark_output(task)
        started = time.perf_counter()
        try:
            values = self._run(task)
        except _Cancelled:
            values = [box_system(TaskCancelledError(f"task {task.name}() was cancelled while running"))] * task.num_returns
        finally:
            with self._lock:
                self.current = None
                self._cancelled.discard(task.task_id)
        return values, time.perf_counter() - started

    def _run(self, task: PushTask) -> list[Value]:
        try:
            fn = self.functions.get(task.fn_id, task.fn_blob)
            args, kwargs = unpack(task.args, [self._resolve(v) for v in task.resolved])
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = trio.run(_await, result)
            return self._pack(task, result)
        except _Cancelled:
            raise
        except BaseException as exc:
            return [box(exc, task.name)] * task.num_returns

    def _resolve(self, value: Value) -> Any:
        if type(value) is Inline:
            return deserialize(value.data, value.buffers)
        if type(value) is Stored:
            return self.rt.store.get(value.object_id)
        raise AssertionError(f"unexpected argument value {type(value).__name__}")

    def _pack(self, task: PushTask, result: Any) -> list[Value]:
        count = task.num_returns
        if count == 0:
            return []
        if count == 1:
            items = [result]
        else:
            items = list(result)
            if len(items) != count:
                raise ValueError(f"{task.name}() returned {len(items)} values, but num_returns={count}")
        values: list[Value] = []
        for item in items:
            serialized = serialize(item, what=f"the return value of {task.name}()")
            if serialized.refs:
                self.rt.objects.mark_escaped([ref.binary() for ref in serialized.refs])
            if serialized.inline:
                values.append(serialized.to_inline())
            else:
                values.append(self.rt.store_put(_ids.put_id(), serialized, task.owner_id))
        return values

    def _mark_output(self, task: PushTask) -> None:
        label = (task.job_id, task.name)
        if label != self._label:
            self._label = label
            marker = f"{LOG_MARKER}job={task.job_id};name={task.name}\n"
            sys.stdout.write(marker)
            sys.stderr.write(marker)
            sys.stdout.flush()
            sys.stderr.flush()


async def _await(coroutine: Any) -> Any:
    return await coroutine


def _reply(channel: Channel, message: TaskDone) -> None:
    if not channel.closed:
        try:
            channel.send_nowait(message)
        except trio.ClosedResourceError:
            pass
