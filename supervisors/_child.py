"""The Child protocol every supervised thing implements, and Trio-task children."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from ._exit import Exit, ExitKind, exit_from_exception


class StartError(Exception):
    """A child failed to start (it exited, raised or timed out before READY)."""

    def __init__(self, child_id: str, exit: Exit) -> None:
        super().__init__(f"child {child_id!r} failed to start: {exit.reason}")
        self.child_id = child_id
        self.exit = exit


class Child(Protocol):
    """One incarnation of a supervised child.

    The supervisor calls :meth:`start` once, then :meth:`wait` and at most
    one :meth:`stop`, all from one Trio task at a time.
    """

    kind: str

    @property
    def pid(self) -> int | None: ...

    async def start(self, nursery: trio.Nursery) -> None:
        """Start and return once the child is READY.

        Helper tasks go into ``nursery`` and must shield themselves from its
        cancellation. On failure raise :class:`StartError`; if cancelled,
        leave nothing running.
        """

    async def wait(self) -> Exit:
        """Block until the child has exited; return its exit."""

    async def stop(self, timeout: float | None, reason: str) -> Exit:
        """Stop the child within ``timeout`` seconds (None: wait forever; 0: kill now).

        Always returns the exit; never leaves the child running.
        """


class _Status:
    """A ``task_status`` handed to a task child: ``started()`` marks it READY."""

    def __init__(self, event: trio.Event) -> None:
        self._event = event

    def started(self, value: object = None) -> None:
        self._event.set()


async def wait_any(*events: trio.Event) -> None:
    """Block until at least one of ``events`` is set."""
    async with trio.open_nursery() as nursery:
        for event in events:

            async def waiter(event: trio.Event = event) -> None:
                await event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(waiter)


class TaskChild:
    """A child that is a Trio task running ``async_fn(*args)`` in the supervisor's loop.

    If ``async_fn`` accepts ``task_status``, it is READY when it calls
    ``task_status.started()``; otherwise as soon as it runs. Stopping cancels
    it: tasks cannot be killed, so a task that ignores cancellation blocks
    its supervisor's shutdown.
    """

    kind = "task"
    pid = None

    def __init__(self, async_fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        self._fn = async_fn
        self._args = args
        self._takes_status = "task_status" in inspect.signature(async_fn).parameters
        self._scope = trio.CancelScope()
        self._ready = trio.Event()
        self._done = trio.Event()
        self._exit: Exit | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._run)
        try:
            await wait_any(self._ready, self._done)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.stop(None, "start cancelled")
            raise
        if not self._ready.is_set():
            assert self._exit is not None
            raise StartError(getattr(self._fn, "__name__", "task"), self._exit)

    async def _run(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                with self._scope:
                    if self._takes_status:
                        await self._fn(*self._args, task_status=_Status(self._ready))
                    else:
                        self._ready.set()
                        await self._fn(*self._args)
            except Exception as exc:
                self._exit = exit_from_exception(exc, at=trio.current_time())
            else:
                self._exit = self._clean_exit()
            finally:
                self._done.set()

    def _clean_exit(self) -> Exit:
        now = trio.current_time()
        if self._scope.cancelled_caught or self._scope.cancel_called:
            return Exit(kind=ExitKind.SHUTDOWN, reason="stopped", at=now)
        return Exit(kind=ExitKind.NORMAL, reason="returned", at=now)

    async def wait(self) -> Exit:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, timeout: float | None, reason: str) -> Exit:
        self._scope.cancel()
        return await self.wait()
