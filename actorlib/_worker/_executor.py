"""The main thread of a worker: runs tasks one at a time from its exec socket, or becomes an actor."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections import deque
from typing import Any

import trio

from .._core import Runtime
from .._serial import FunctionCache, box, box_system
from .._titles import set_title
from .._wire import ActorReady, CallActor, CancelTask, InitActor, PushTask
from ..exceptions import TaskCancelledError
from ._actor import ActorRunner
from ._calls import Cancelled, Reply, failed, run_sync

LOG_MARKER = "\x1factorlib:"
REMEMBERED_CANCELS = 10_000
INTERRUPT_RETRY = 0.02  # seconds between SIGINTs until a cancelled task has seen one


class TaskContext:
    """What get_runtime_context() reports while a task runs."""

    def __init__(self, task: PushTask) -> None:
        self.task_id = task.task_id
        self.name = task.name
        self.job_id = task.job_id
        self.gpu_ids = task.gpu_ids
        self.resources = task.resources
        self.placement_group = task.placement_group
        self.capture_child_tasks = task.capture_child_tasks


class Executor:
    """What the worker's main thread runs, and how the runtime thread reaches into it."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.functions = FunctionCache()
        self.current: TaskContext | None = None
        self.actor: ActorRunner | None = None
        self._cancelled: set[bytes] = set()
        self._cancel_order: deque[bytes] = deque()
        self._lock = threading.Lock()  # orders cancel() against a task starting
        self._interrupted: bytes | None = None  # the last task whose SIGINT handler raised
        self._reply: Reply | None = None  # the current task's
        self._main = threading.main_thread().ident
        self._label: tuple[str, str] | None = None
        signal.signal(signal.SIGINT, self._on_sigint)

    # ---- the main thread: messages from the exec socket ---------------------------------

    def handle(self, message: Any, channel: Any) -> bool:
        """Run one message; False when the main thread must leave the exec loop."""
        try:
            kind = type(message)
            if kind is PushTask:
                self._run_task(message, channel)
            elif kind is CallActor:
                self.call(message, channel)
            elif kind is InitActor:
                return self._become_actor(message, channel)
            elif kind is CancelTask:  # of a call to this sync actor (its callers' only socket)
                self.cancel(message.task_id, message.num_returns, channel, message.recursive)
        except Cancelled:
            pass  # a cancel that arrived as its task finished
        return True

    def _run_task(self, task: PushTask, channel: Any) -> None:
        self.functions.remember(task.fn_id, task.fn_blob)
        ident = self.rt.identity
        ident.job_id = task.job_id
        ident.namespace = task.namespace  # nested tasks and named actors live in the job's namespace
        self._mark_output(task.job_id, task.name)
        reply = Reply(self.rt, channel, task.task_id, task.name, task.job_id, b"", task.attempt)
        try:
            # From here a cancel interrupts this thread (SIGINT raises Cancelled): the task
            # must be answered wherever that lands, not only inside run_sync.
            if not self._begin(task, channel, reply):
                return
            set_title(task.name)
            try:  # what the task cannot run with fails the task, never the worker
                _show_gpus(task.gpu_ids)
                fn = self.functions.get(task.fn_id, task.fn_blob)
            except Exception as exc:
                reply.done([box(exc, task.name)] * task.num_returns)
            else:
                run_sync(self.rt, fn, task, reply, task.name)
        except Cancelled:
            current = self.current
            if current is not None and current.task_id == task.task_id and not reply.sent:
                reply.done(failed(Cancelled(), task.name, task.num_returns))
        finally:
            with self._lock:
                self.current = None
                self._reply = None
            set_title("IDLE")
            if not reply.sent:
                reply.abandon()

    def _begin(self, task: PushTask, channel: Any, reply: Reply) -> bool:
        """Make ``task`` current unless it was cancelled (or its owner left) before it ran."""
        with self._lock:
            if channel.closed or task.task_id in self._cancelled:
                self._cancelled.discard(task.task_id)
                return False
            self.current = TaskContext(task)
            self._reply = reply
            return True

    def _on_sigint(self, signum: int, frame: Any) -> None:
        """Raise Cancelled in the cancelled task, once: a later signal (cancels are re-sent until
        one is seen) must not land in the code that answers the cancellation, nor in any reply
        already going out, or the call would go unanswered."""
        current = self.current
        if current is None or current.task_id not in self._cancelled or self._interrupted == current.task_id:
            return
        reply = self._reply
        if reply is not None and reply.sent:
            return
        self._interrupted = current.task_id
        raise Cancelled()

    # ---- either thread: actor calls ---------------------------------------------------

    def call(self, message: CallActor, channel: Any) -> None:
        actor = self.actor
        if actor is None:
            error = box_system(RuntimeError("this worker is not an actor"))
            Reply(self.rt, channel, message.call_id).done([error] * message.num_returns)
        elif actor.mode == "sync":
            if threading.get_ident() == self._main:
                actor.run_one(message, channel)
            else:
                error = box_system(RuntimeError("calls to a sync actor go to its exec socket"))
                Reply(self.rt, channel, message.call_id).done([error] * message.num_returns)
        else:
            actor.submit(message, channel)

    def _become_actor(self, message: InitActor, channel: Any) -> bool:
        spec = message.spec
        ident = self.rt.identity
        ident.job_id = spec.job_id
        ident.namespace = spec.job_namespace or spec.namespace
        ident.actor_id = spec.actor_id
        ident.placement_group = spec.placement_group
        ident.capture_child_tasks = spec.capture_child_tasks
        self._mark_output(spec.job_id, spec.class_name)
        set_title(spec.class_name)
        try:
            self.actor = ActorRunner(self.rt, spec)
        except BaseException as exc:
            _send(channel, ActorReady(req=message.req, error=box(exc, f"{spec.class_name}.__init__")))
            return True
        actor = self.actor
        if actor.mode in ("trio", "asyncio"):
            actor.serve(lambda: _send(channel, ActorReady(req=message.req)))  # runs until the process ends
            return False
        _send(channel, ActorReady(req=message.req, exec=actor.mode == "sync"))
        return True

    # ---- the runtime thread: cancellation -------------------------------------------------

    def cancel(self, task_id: bytes, num_returns: int, channel: Any, recursive: bool = False) -> None:
        """Interrupt the task if it runs (``recursive``: and cancel the tasks and actor calls
        it submitted); else answer now and skip it if it arrives later. In an actor: see
        ActorRunner.cancel; ``recursive`` cancels what the call submitted, as for a task.
        (Runtime thread, or a sync actor's main thread for a cancel on its exec socket.)"""
        if self.actor is not None:
            if self.actor.cancel(task_id) and recursive:
                self.rt.soon(self.rt.cancel_children, task_id)  # the submitters live on the runtime thread
            return
        with self._lock:
            self._remember_cancel(task_id)
            current = self.current
            running = current is not None and current.task_id == task_id
            if running:
                self.rt.nursery.start_soon(self._interrupt, task_id)
        if running:
            if recursive:
                self.rt.cancel_children(task_id)
            return
        error = box_system(TaskCancelledError("the task was cancelled before it ran"))
        Reply(self.rt, channel, task_id).done([error] * num_returns)

    async def _interrupt(self, task_id: bytes) -> None:
        """SIGINT the main thread until the running task ``task_id`` has seen it.

        One signal is not always enough on CPython 3.11: when it lands while the main thread
        runs bytecode (say, unpickling a large function), the runtime thread's eval loop can
        clear the interpreter's eval breaker before the main thread looks. The handler then
        waits for the next interrupted system call, and a task sleeping in ``time.sleep``
        never gets one. Each further signal interrupts that sleep and runs the handler.
        """
        while True:
            with self._lock:
                current = self.current
                if current is None or current.task_id != task_id or self._interrupted == task_id:
                    return
                signal.pthread_kill(self._main, signal.SIGINT)  # type: ignore[arg-type]
            await trio.sleep(INTERRUPT_RETRY)

    def was_cancelled(self, task_id: bytes) -> bool:
        return task_id in self._cancelled

    def _remember_cancel(self, task_id: bytes) -> None:
        self._cancelled.add(task_id)
        self._cancel_order.append(task_id)
        if len(self._cancel_order) > REMEMBERED_CANCELS:
            self._cancelled.discard(self._cancel_order.popleft())

    def _mark_output(self, job_id: str, name: str) -> None:
        label = (job_id, name)
        if label != self._label:
            self._label = label
            marker = f"{LOG_MARKER}job={job_id};name={name}\n"
            sys.stdout.write(marker)
            sys.stderr.write(marker)
            sys.stdout.flush()
            sys.stderr.flush()


def _show_gpus(gpu_ids: list[str]) -> None:
    """Let the task see only the GPUs its lease holds (its CUDA_VISIBLE_DEVICES)."""
    visible = ",".join(gpu_ids)
    if os.environ.get("CUDA_VISIBLE_DEVICES") != visible:
        try:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible
        except ValueError as exc:  # a NUL in an id: the ValueError once escaped and killed the worker
            raise ValueError(f"GPU ids {gpu_ids!r} cannot be set as CUDA_VISIBLE_DEVICES: {exc}") from None


def _send(channel: Any, message: Any) -> None:
    try:
        channel.send_threadsafe(message)
    except Exception:
        pass  # the node is gone
