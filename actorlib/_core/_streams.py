"""Streaming results (``num_returns="streaming"``): ObjectRefGenerator and the owner's stream table."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import trio

from .._wire import ErrorValue, StreamEnd, StreamItem
from ._objects import LoopWaiter, ThreadWaiter
from ._refs import ObjectRef

if TYPE_CHECKING:
    from ._runtime import Runtime


def item_id(task_id: bytes, index: int) -> bytes:
    return task_id + b"s" + index.to_bytes(4, "big")


class _Stream:
    __slots__ = ("available", "end", "waiters")

    def __init__(self) -> None:
        self.available = 0  # items known so far
        self.end: int | None = None  # total items, once the stream ended
        self.waiters: list[Any] = []


class StreamTable:
    """Streams this process owns; fed by StreamItem/StreamEnd on the runtime thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._streams: dict[bytes, _Stream] = {}
        self._lock = threading.Lock()

    def open(self, task_id: bytes) -> None:
        self._streams[task_id] = _Stream()

    def on_message(self, message: StreamItem | StreamEnd) -> None:
        stream = self._streams.get(message.task_id)
        if stream is None:
            return
        if isinstance(message, StreamItem):
            self.rt.objects.add(item_id(message.task_id, message.index), owned=True, owner=self.rt.identity.address, value=message.value)
            with self._lock:
                stream.available = max(stream.available, message.index + 1)
        else:
            self.finish(message.task_id, message.count, message.error)
            return
        self._wake(stream)

    def finish(self, task_id: bytes, count: int, error: ErrorValue | None) -> None:
        """End a stream after ``count`` items; an error becomes one more item that raises it."""
        stream = self._streams.get(task_id)
        if stream is None or stream.end is not None:
            return
        if error is not None:
            self.rt.objects.add(item_id(task_id, count), owned=True, owner=self.rt.identity.address, value=error)
            count += 1
        with self._lock:
            stream.available = max(stream.available, count)
            stream.end = count
        self._wake(stream)

    def _wake(self, stream: _Stream) -> None:
        with self._lock:
            waiters, stream.waiters = stream.waiters, []
        for waiter in waiters:
            waiter.notify()

    def count(self, task_id: bytes) -> int:
        """Items that arrived so far."""
        stream = self._streams.get(task_id)
        return stream.available if stream is not None else 0

    def poll(self, task_id: bytes, index: int, waiter: Any) -> str:
        """"ready" (item ``index`` exists), "end", or "wait" (``waiter`` registered)."""
        stream = self._streams[task_id]
        with self._lock:
            if index < stream.available:
                return "ready"
            if stream.end is not None:
                return "end"
            stream.waiters.append(waiter)
            return "wait"

    def close(self, task_id: bytes) -> None:
        self._streams.pop(task_id, None)


class ObjectRefGenerator:
    """The refs a streaming task or method yields, as they arrive.

    Iterate it (``for ref in gen``) or ``async for`` it in Trio or asyncio;
    each item is an ObjectRef. If the generator raised, one last ref
    raises that error when you get it.
    """

    def __init__(self, runtime: Runtime, task_id: bytes) -> None:
        self._runtime = runtime
        self._task_id = task_id
        self._next = 0

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef:
        streams = self._runtime.streams
        while True:
            waiter = ThreadWaiter(1)
            state = streams.poll(self._task_id, self._next, waiter)
            if state == "ready":
                return self._take()
            if state == "end":
                raise StopIteration
            waiter.wait(None)

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef:
        import sniffio

        streams = self._runtime.streams
        while True:
            if sniffio.current_async_library() == "trio":
                token = trio.lowlevel.current_trio_token()
                event = trio.Event()
                state = streams.poll(self._task_id, self._next, LoopWaiter(lambda: token.run_sync_soon(event.set)))
                wait = event.wait
            else:
                import asyncio

                loop = asyncio.get_running_loop()
                future = loop.create_future()
                waiter = LoopWaiter(lambda: loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None)))
                state = streams.poll(self._task_id, self._next, waiter)
                wait = lambda: future  # noqa: E731
            if state == "ready":
                return self._take()
            if state == "end":
                raise StopAsyncIteration
            await wait()

    def _take(self) -> ObjectRef:
        # The table counted one reference when the item arrived: this ref takes it over.
        ref = ObjectRef(item_id(self._task_id, self._next), self._runtime.identity.address, self._runtime, counted=True)
        self._next += 1
        return ref

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({self._task_id.hex()})"
