"""Queue: a FIFO queue in an actor, usable from any driver, task or actor that holds it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import actorlib
from actorlib import ActorHandle
from actorlib.exceptions import ActorDiedError

from ._actor import RemoteQueueActor
from ._errors import Empty, Full


class Queue:
    """A first-in, first-out queue held by an actor (Ray's ``ray.util.queue.Queue``).

    Pass it to tasks and actors like any value: every copy talks to the same
    actor, so several processes can put and get concurrently. Each item is
    delivered to exactly one getter. Blocking calls block the calling thread;
    in ``async`` code use :meth:`put_async` / :meth:`get_async` (Trio or
    asyncio). There is no ordering among several producers blocked on a full
    queue, nor among several consumers blocked on an empty one.

    Args:
        maxsize: the most items the queue holds; 0 (the default) is unbounded.
        actor_options: options for the actor, as for ``Cls.options(...)``
            (e.g. ``{"num_cpus": 0}`` or ``{"name": "jobs"}``).
    """

    def __init__(self, maxsize: int = 0, actor_options: dict[str, Any] | None = None) -> None:
        if not isinstance(maxsize, int) or isinstance(maxsize, bool) or maxsize < 0:
            raise ValueError(f"maxsize must be an integer >= 0, got {maxsize!r}")
        self.maxsize = maxsize
        self.actor: ActorHandle | None = RemoteQueueActor.options(**(actor_options or {})).remote(maxsize)

    # ---- size --------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.size()

    def size(self) -> int:
        """The number of items in the queue now."""
        return actorlib.get(self._actor().qsize.remote())

    def qsize(self) -> int:
        """The number of items in the queue now (same as :meth:`size`)."""
        return self.size()

    def empty(self) -> bool:
        return actorlib.get(self._actor().empty.remote())

    def full(self) -> bool:
        return actorlib.get(self._actor().full.remote())

    # ---- put ---------------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``; if the queue is full, wait for room (``block``), at most ``timeout`` seconds.

        Raises:
            Full: no room (at once with ``block=False``, else after ``timeout``).
            ValueError: ``timeout`` is negative.
        """
        with _mapped():
            actorlib.get(self._put_ref(item, block, timeout))

    async def put_async(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """:meth:`put` for Trio or asyncio code: waits without blocking the event loop."""
        with _mapped():
            await self._put_ref(item, block, timeout)

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``. Raises Full."""
        self.put(item, block=False)

    def put_nowait_batch(self, items: Iterable[Any]) -> None:
        """Add all of ``items`` in order, or none of them. Raises Full if they do not all fit."""
        if not isinstance(items, Iterable):
            raise TypeError("Argument 'items' must be an Iterable")
        with _mapped():
            actorlib.get(self._actor().put_nowait_batch.remote(list(items)))

    def _put_ref(self, item: Any, block: bool, timeout: float | None) -> Any:
        if not block:
            return self._actor().put_nowait.remote(item)
        _check_timeout(timeout)
        return self._actor().put.remote(item, timeout)

    # ---- get ---------------------------------------------------------------------------

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the oldest item; if there is none, wait (``block``), at most ``timeout`` seconds.

        Raises:
            Empty: no item (at once with ``block=False``, else after ``timeout``).
            ValueError: ``timeout`` is negative.
        """
        with _mapped():
            return actorlib.get(self._get_ref(block, timeout))

    async def get_async(self, block: bool = True, timeout: float | None = None) -> Any:
        """:meth:`get` for Trio or asyncio code: waits without blocking the event loop."""
        with _mapped():
            return await self._get_ref(block, timeout)

    def get_nowait(self) -> Any:
        """``get(block=False)``. Raises Empty."""
        return self.get(block=False)

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        """Remove and return the ``num_items`` oldest items, or none. Raises Empty if there are fewer."""
        if not isinstance(num_items, int) or isinstance(num_items, bool):
            raise TypeError("Argument 'num_items' must be an int")
        if num_items < 0:
            raise ValueError("'num_items' must be nonnegative")
        with _mapped():
            return actorlib.get(self._actor().get_nowait_batch.remote(num_items))

    def _get_ref(self, block: bool, timeout: float | None) -> Any:
        if not block:
            return self._actor().get_nowait.remote()
        _check_timeout(timeout)
        return self._actor().get.remote(timeout)

    # ---- lifetime ----------------------------------------------------------------------

    def shutdown(self, force: bool = False, grace_period_s: int = 5) -> None:
        """Kill the queue's actor, releasing its resources; its items are lost. Idempotent.

        Calls blocked on the queue (here or in other processes) fail with
        ActorDiedError, and so do later calls. ``force`` and ``grace_period_s``
        are accepted for Ray compatibility; the actor is killed at once either way.
        """
        actor, self.actor = self.actor, None
        if actor is not None:
            actorlib.kill(actor)

    def _actor(self) -> ActorHandle:
        if self.actor is None:
            raise ActorDiedError("this queue was shut down")
        return self.actor


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError("'timeout' must be a non-negative number")


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    """Re-raise the actor's Empty/Full as plain ones (not TaskErrors with a remote traceback)."""
    try:
        yield
    except Empty as exc:
        raise Empty(*exc.args) from None
    except Full as exc:
        raise Full(*exc.args) from None
