"""``open_supervisor``: run a Supervisor for the duration of an ``async with`` block."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from ._child import StartError
from ._supervisor import Escalated, Supervisor


@asynccontextmanager
async def open_supervisor(*args: Any, **kwargs: Any) -> AsyncIterator[Supervisor]:
    """Start a Supervisor (same arguments), yield it once its children are READY,
    and stop it in order when the block exits.

    If the supervisor escalates while the block runs, the block is cancelled
    and :class:`Escalated` is raised from the ``async with``; a failed start
    raises :class:`StartError` before the block runs.
    """
    supervisor = Supervisor(*args, **kwargs)
    failure: Exception | None = None
    async with trio.open_nursery() as nursery:

        async def run(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            nonlocal failure
            started = False

            def mark_started() -> None:
                nonlocal started
                started = True
                task_status.started()

            status = _Relay(mark_started)
            try:
                await supervisor.run(task_status=status)  # type: ignore[arg-type]
            except (Escalated, StartError) as exc:
                failure = exc
                nursery.cancel_scope.cancel()
                if not started:
                    task_status.started()

        await nursery.start(run)
        if failure is None:
            try:
                yield supervisor
            finally:
                supervisor.request_stop("block exited")
    if failure is not None:
        raise failure


class _Relay:
    def __init__(self, callback: Any) -> None:
        self._callback = callback

    def started(self, value: object = None) -> None:
        self._callback()
