"""The actor behind a Queue: an asyncio.Queue whose blocked getters and putters wait concurrently."""

from __future__ import annotations

import asyncio
from typing import Any

import actorlib

from ._errors import Empty, Full


class QueueActor:
    """Holds the items. Blocking calls wait in the actor's event loop, so other calls go on meanwhile."""

    __actorlib_event_loop__ = "asyncio"

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)

    def qsize(self) -> int:
        return self.queue.qsize()

    def empty(self) -> bool:
        return self.queue.empty()

    def full(self) -> bool:
        return self.queue.full()

    async def put(self, item: Any, timeout: float | None = None) -> None:
        # asyncio.timeout, not wait_for: with timeout=0 an item that fits still goes in.
        try:
            async with asyncio.timeout(timeout):
                await self.queue.put(item)
        except TimeoutError:
            raise Full(f"the queue stayed full for {timeout}s") from None

    async def get(self, timeout: float | None = None) -> Any:
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            raise Empty(f"the queue stayed empty for {timeout}s") from None

    def put_nowait(self, item: Any) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            raise Full(f"the queue is full (maxsize={self.maxsize})") from None

    def put_nowait_batch(self, items: list[Any]) -> None:
        if self.maxsize > 0 and len(items) + self.queue.qsize() > self.maxsize:
            raise Full(f"Cannot add {len(items)} items to queue of size {self.queue.qsize()} and maxsize {self.maxsize}.")
        for item in items:
            self.queue.put_nowait(item)

    def get_nowait(self) -> Any:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            raise Empty("the queue is empty") from None

    def get_nowait_batch(self, num_items: int) -> list[Any]:
        if num_items > self.queue.qsize():
            raise Empty(f"Cannot get {num_items} items from queue of size {self.queue.qsize()}.")
        return [self.queue.get_nowait() for _ in range(num_items)]


RemoteQueueActor = actorlib.remote(QueueActor)
