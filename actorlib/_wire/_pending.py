"""Request/reply correlation: each request carries a ``req`` number; replies resolve it."""

from __future__ import annotations

import itertools
from typing import Any

import trio


class Pending:
    """Outstanding requests on one channel, awaited by number."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._waiting: dict[int, tuple[trio.Event, list[Any]]] = {}
        self._failure: BaseException | None = None

    def new(self) -> int:
        """Reserve a request number; await it with :meth:`wait`.

        After :meth:`fail_all`, waiting on a new number raises that failure at once.
        """
        req = next(self._numbers)
        event = trio.Event()
        if self._failure is not None:
            event.set()
        self._waiting[req] = (event, [])
        return req

    async def wait(self, req: int) -> Any:
        """The reply to ``req``. Raises the failure passed to :meth:`fail_all`."""
        event, slot = self._waiting[req]
        try:
            await event.wait()
        finally:
            self._waiting.pop(req, None)
        if not slot:
            assert self._failure is not None
            raise self._failure
        return slot[0]

    def resolve(self, req: int, reply: Any) -> bool:
        entry = self._waiting.get(req)
        if entry is None:
            return False
        entry[1].append(reply)
        entry[0].set()
        return True

    def fail_all(self, error: BaseException) -> None:
        """Wake every waiter with ``error`` (the connection is gone)."""
        self._failure = error
        for event, _slot in self._waiting.values():
            event.set()
