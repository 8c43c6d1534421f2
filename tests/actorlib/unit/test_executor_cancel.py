"""A cancel's SIGINT never leaves a task unanswered, wherever (and however often) it lands.

The worker's main thread runs tasks; cancels interrupt it with SIGINT, re-sent until
seen. These tests deliver real signals at the worst moments: inside the reply.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actorlib import _titles
from actorlib._core import Identity, Runtime
from actorlib._serial import export, serialize, unbox
from actorlib._wire import PushTask, TaskDone
from actorlib._worker._executor import Executor
from actorlib.exceptions import TaskCancelledError


class Caller:
    """The owner's end of the exec connection: records replies; ``during_send`` runs first."""

    closed = False

    def __init__(self, during_send: Callable[[], None] = lambda: None) -> None:
        self.replies: list[TaskDone] = []
        self.during_send = during_send

    def send_threadsafe(self, message: Any) -> None:
        self.during_send()
        self.replies.append(message)


RUNNING: list[Executor] = []


@pytest.fixture
def pytest_process_restored(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Keep what running a task changes in a worker off pytest's own process: the title (a
    worker retitles itself ``actorlib::<task>``, then ``actorlib::IDLE``) is recorded instead of
    shown, and CUDA_VISIBLE_DEVICES (set for the task's GPUs) is put back. Left behind, the title
    made later tests take pytest for an actorlib process (the chaos injector's ``still_listed``),
    and the variable would hide GPUs from every cluster started after."""
    titles: list[str] = []
    monkeypatch.setattr(_titles, "_title", _titles._title)
    monkeypatch.setattr(_titles, "_set", titles.append)
    environ = dict(os.environ)
    try:
        yield titles
    finally:
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        os.environ.update(environ)


@pytest.fixture
def executor(pytest_process_restored: list[str]) -> Iterator[Executor]:
    previous = signal.getsignal(signal.SIGINT)
    try:
        RUNNING[:] = [Executor(Runtime(Identity(mode="worker")))]
        yield RUNNING[0]
    finally:
        RUNNING.clear()
        signal.signal(signal.SIGINT, previous)


def push(fn: Any) -> PushTask:
    exported = export(fn, fn.__name__)
    args = serialize(((), {}), what="arguments").to_inline()
    return PushTask(
        task_id=b"t" * 16, fn_id=exported.fn_id, fn_blob=exported.blob, name=fn.__name__, args=args, resolved=[],
        num_returns=1, job_id="j", owner="unix:/owner", owner_id=b"o",
    )  # fmt: skip


def cancelled_while_running() -> int:
    executor = RUNNING[0]
    assert executor.current is not None
    executor._remember_cancel(executor.current.task_id)  # the owner cancels it...
    signal.raise_signal(signal.SIGINT)  # ...and the interrupt lands while it runs
    return 1


def test_a_second_interrupt_landing_in_the_cancellation_reply_is_ignored(executor: Executor) -> None:
    task = push(cancelled_while_running)
    caller = Caller(during_send=lambda: signal.raise_signal(signal.SIGINT))  # the re-sent cancel
    executor.handle(task, caller)
    assert len(caller.replies) == 1
    with pytest.raises(TaskCancelledError):
        raise unbox(caller.replies[0].returns[0])


def finishes() -> int:
    return 7


def test_a_cancel_landing_in_a_reply_already_going_out_is_too_late(executor: Executor) -> None:
    task = push(finishes)

    def cancel_now() -> None:  # the owner cancels just as the task's result is being written
        executor._remember_cancel(task.task_id)
        signal.raise_signal(signal.SIGINT)

    caller = Caller(during_send=cancel_now)
    executor.handle(task, caller)
    assert len(caller.replies) == 1 and deserialize_return(caller.replies[0]) == 7


def deserialize_return(done: TaskDone) -> Any:
    from actorlib._serial import deserialize

    value = done.returns[0]
    return deserialize(value.data, value.buffers)
