"""The main thread of a worker: runs pushed tasks one at a time, or becomes an actor."""

from __future__ import annotations

import queue
import signal
import sys
import threading
from typing import Any

from .._core import Runtime
from .._serial import FunctionCache, box, box_system
from .._wire import ActorReady, CallActor, Channel, InitActor, PushTask
from ..exceptions import TaskCancelledError
from ._actor import ActorRunner
from ._calls import Cancelled, Reply, run_sync, send_quietly

LOG_MARKER = "\x1factorlib:"


class TaskContext:
    """What get_runtime_context() reports while a task runs."""

    def __init__(self, task: PushTask) -> None:
        self.task_id = task.task_id
        self.name = task.name
        self.job_id = task.job_id


class Executor:
    """The work queue of a worker, drained by its main thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.functions = FunctionCache()
        self.current: TaskContext | None = None
        self.actor: ActorRunner | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
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
        self._queue.put(("task", task, channel))

    def init_actor(self, message: InitActor, channel: Channel) -> None:
        self._queue.put(("init", message, channel))

    def call(self, message: CallActor, channel: Channel) -> None:
        if self.actor is None:
            error = box_system(RuntimeError("this worker is not an actor"))
            Reply(self.rt, channel, message.call_id).done([error] * message.num_returns)
            return
        self.actor.submit(message, channel)

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
        Reply(self.rt, channel, task_id).done([error] * task.num_returns)

    def on_channel_lost(self, channel: Channel) -> None:
        pass  # queued tasks of a lost owner are skipped when dequeued (channel.closed)

    def stop(self) -> None:
        self._queue.put(None)

    # ---- the main thread -----------------------------------------------------------

    def run_forever(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._run_item(*item)
            except Cancelled:
                pass  # a cancel that arrived as its task finished
            if self.actor is not None and self.actor.mode in ("trio", "asyncio"):
                return  # the actor's event loop ran on this thread until it ended

    def _run_item(self, kind: str, message: Any, channel: Channel) -> None:
        if kind == "task":
            self._run_task(message, channel)
        elif kind == "call":
            assert self.actor is not None
            self.actor.run_one(message, channel)
        else:
            self._become_actor(message, channel)

    def _on_sigint(self, signum: int, frame: Any) -> None:
        current = self.current
        if current is not None and current.task_id in self._cancelled:
            raise Cancelled()

    def _run_task(self, task: PushTask, channel: Channel) -> None:
        if not self._begin(task, channel):
            return
        self.rt.identity.job_id = task.job_id
        self._mark_output(task.job_id, task.name)
        try:
            fn = self.functions.get(task.fn_id, task.fn_blob)
        except Exception as exc:
            Reply(self.rt, channel, task.task_id).done([box(exc, task.name)] * task.num_returns)
        else:
            run_sync(self.rt, fn, task, Reply(self.rt, channel, task.task_id), task.name)
        finally:
            with self._lock:
                self.current = None
                self._cancelled.discard(task.task_id)

    def _begin(self, task: PushTask, channel: Channel) -> bool:
        """Make ``task`` current unless it was cancelled (or its owner left) while queued."""
        with self._lock:
            self._queued.pop(task.task_id, None)
            if channel.closed or task.task_id in self._cancelled:
                self._cancelled.discard(task.task_id)
                return False
            self.current = TaskContext(task)
            return True

    def _become_actor(self, message: InitActor, channel: Channel) -> None:
        spec = message.spec
        self.rt.identity.job_id = spec.job_id
        self.rt.actor_id = spec.actor_id  # type: ignore[attr-defined]
        self._mark_output(spec.job_id, spec.class_name)
        try:
            self.actor = ActorRunner(self.rt, spec, self._queue)
        except BaseException as exc:
            send_quietly_soon(self.rt, channel, ActorReady(req=message.req, error=box(exc, f"{spec.class_name}.__init__")))
            return
        if self.actor.mode in ("trio", "asyncio"):
            self.actor.serve(lambda: send_quietly_soon(self.rt, channel, ActorReady(req=message.req)))
        else:
            send_quietly_soon(self.rt, channel, ActorReady(req=message.req))

    def _mark_output(self, job_id: str, name: str) -> None:
        label = (job_id, name)
        if label != self._label:
            self._label = label
            marker = f"{LOG_MARKER}job={job_id};name={name}\n"
            sys.stdout.write(marker)
            sys.stderr.write(marker)
            sys.stdout.flush()
            sys.stderr.flush()


def send_quietly_soon(runtime: Runtime, channel: Channel, message: Any) -> None:
    try:
        runtime.soon(send_quietly, channel, message)
    except Exception:
        pass
