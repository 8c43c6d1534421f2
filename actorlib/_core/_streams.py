"""Streaming results (``num_returns="streaming"``): ObjectRefGenerator and the owner's stream table."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import trio

from .._ids import return_id
from .._serial import box_system
from .._wire import ErrorValue, Stored, StreamEnd, StreamItem, Value
from ..exceptions import TaskCancelledError
from ._objects import LoopWaiter, ThreadWaiter
from ._refs import ObjectRef

if TYPE_CHECKING:
    from ._runtime import Runtime


def item_id(task_id: bytes, index: int) -> bytes:
    return task_id + b"s" + index.to_bytes(4, "big")


class _Stream:
    __slots__ = ("available", "end", "waiters", "abandoned", "result", "cut", "finished")

    def __init__(self, result: bytes | None) -> None:
        self.available = 0  # items known so far
        self.end: int | None = None  # total items, once the stream ended
        self.waiters: list[Any] = []
        self.abandoned = False  # its generator is gone: later items are dropped as they come
        self.result = result  # num_returns="dynamic": the object that gets every item's ref at the end
        # cancel(): the index where its owner ended it (end = cut + 1); what its task still sends
        # is dropped as it comes, until the task's own end (``finished``).
        self.cut: int | None = None
        self.finished = False


class StreamTable:
    """Streams this process owns; fed by StreamItem/StreamEnd on the runtime thread."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._streams: dict[bytes, _Stream] = {}
        self._lock = threading.Lock()
        self._abandoned: deque[tuple[bytes, int]] = deque()  # (task id, first item not taken)

    def open(self, task_id: bytes, result: bytes | None = None) -> None:
        self._streams[task_id] = _Stream(result)

    def on_message(self, message: StreamItem | StreamEnd) -> None:
        stream = self._streams.get(message.task_id)
        if stream is None:
            return
        if isinstance(message, StreamItem):
            object_id = item_id(message.task_id, message.index)
            if stream.cut is not None:  # cancelled: nobody takes it (and its id may be the error's)
                self._drop(object_id, message.value)
                return
            self.rt.objects.add(object_id, owned=True, owner=self.rt.identity.address, value=message.value)
            if stream.abandoned:  # nobody will take it: free it
                self.rt.objects.decref_later(object_id)
                return
            with self._lock:
                stream.available = max(stream.available, message.index + 1)
        else:
            self.finish(message.task_id, message.count, message.error)
            return
        self._wake(stream)

    def finish(self, task_id: bytes, count: int, error: ErrorValue | None) -> None:
        """End a stream after ``count`` items; an error becomes one more item that raises it."""
        stream = self._streams.get(task_id)
        if stream is None:
            return
        if stream.cut is not None:  # cancelled: the task's own end only lets the stream go
            stream.finished = True
            if stream.abandoned:
                del self._streams[task_id]
            return
        if stream.end is not None:
            return
        if stream.result is not None:
            del self._streams[task_id]
            self._gather(stream.result, task_id, count, error)
            return
        if error is not None:
            self.rt.objects.add(item_id(task_id, count), owned=True, owner=self.rt.identity.address, value=error)
            count += 1
        if stream.abandoned:
            if error is not None:
                self.rt.objects.decref_later(item_id(task_id, count - 1))
            del self._streams[task_id]
            return
        with self._lock:
            stream.available = max(stream.available, count)
            stream.end = count
        self._wake(stream)

    def cancel(self, task_id: bytes, taken: int) -> None:
        """(Runtime thread.) Its owner cancelled a streaming task whose generator took ``taken``
        items: as in Ray, the next item raises TaskCancelledError and the stream ends there (a stream
        that ended already is left whole). Items that arrived but were not taken, and those
        that still come, are freed."""
        stream = self._streams.get(task_id)
        if stream is None or stream.end is not None or stream.result is not None:
            return  # over (Ray leaves a finished stream as it is), or dynamic (its one ref fails)
        objects = self.rt.objects
        error = box_system(TaskCancelledError("the generator's task was cancelled"))
        with self._lock:
            arrived = stream.available
            stream.cut = taken
        for index in range(taken + 1, arrived):  # the table counted one ref for each
            objects.decref_later(item_id(task_id, index))
        object_id = item_id(task_id, taken)
        entry = objects.get(object_id) if taken < arrived else None
        if entry is not None and entry.value is not None:  # it arrived: the error takes its place
            old = entry.value
            if objects.replace(object_id, old, error):
                self._drop(object_id, old)
        else:
            objects.add(object_id, owned=True, owner=self.rt.identity.address, value=error)
        with self._lock:
            stream.available = stream.end = taken + 1
        self._wake(stream)

    def _drop(self, object_id: bytes, value: Value) -> None:
        """Free an item's value that no entry of the table holds (a store copy, if it has one)."""
        if type(value) is Stored:
            self.rt.objects.on_free([(object_id, value)])

    def _gather(self, result: bytes, task_id: bytes, count: int, error: ErrorValue | None) -> None:
        """A dynamic generator ended: its result becomes the refs to its ``count`` items (each
        arrived counted once: the refs take those counts over), or its error. Like refs in a
        put value, the refs in that value are pinned by this process while it lives."""
        refs = [ObjectRef(item_id(task_id, i), self.rt.identity.address, self.rt, counted=True) for i in range(count)]
        entry = self.rt.objects.get(result)
        if entry is None or entry.count <= 0:  # its ref was dropped already: the items go with it
            return
        value = error if error is not None else self.rt.snapshot(result, DynamicObjectRefGenerator(refs), "a dynamic generator's refs")
        self.rt.objects.complete(result, value)

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

    def abandon_later(self, task_id: bytes, taken: int) -> None:
        """The generator of ``task_id`` is gone after taking ``taken`` items; safe from ``__del__``."""
        self._abandoned.append((task_id, taken))
        self.rt.wake_housekeeping()

    @property
    def idle(self) -> bool:
        return not self._abandoned

    def collect(self) -> None:
        """(Runtime thread.) Drop the items nobody can take any more, and finished streams."""
        while self._abandoned:
            task_id, taken = self._abandoned.popleft()
            stream = self._streams.get(task_id)
            if stream is None:
                continue
            for index in range(taken, stream.available):  # the table counted one ref for each
                self.rt.objects.decref_later(item_id(task_id, index))
            if stream.end is not None and (stream.cut is None or stream.finished):
                del self._streams[task_id]
            else:
                stream.abandoned = True

    def __len__(self) -> int:
        return len(self._streams)


def open_stream(runtime: Runtime, task_id: bytes, dynamic: bool) -> ObjectRefGenerator | ObjectRef:
    """Before submitting a generator task or method: what ``.remote()`` returns for it."""
    if not dynamic:
        runtime.streams.open(task_id)
        return ObjectRefGenerator(runtime, task_id)
    result = return_id(task_id, 0)
    owner = runtime.identity.address
    runtime.objects.add(result, owned=True, owner=owner)
    runtime.streams.open(task_id, result)
    return ObjectRef(result, owner, runtime, counted=True)


class DynamicObjectRefGenerator:
    """What a ``num_returns="dynamic"`` task's one ref holds once its generator ended: the refs
    to what it yielded, in order (iterate it, or ``len()``). Deprecated as in Ray; streaming
    (ObjectRefGenerator) gives each item as it comes."""

    def __init__(self, refs: list[ObjectRef]) -> None:
        self._refs = deque(refs)

    def __iter__(self) -> Iterator[ObjectRef]:
        while self._refs:
            yield self._refs.popleft()

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({len(self._refs)} refs)"


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

    def __del__(self) -> None:
        try:
            self._runtime.streams.abandon_later(self._task_id, self._next)
        except Exception:  # interpreter shutdown
            pass

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
            self._runtime.block(waiter, None)  # a worker waiting for items lends its CPUs

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
