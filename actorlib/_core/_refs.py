"""ObjectRef: a future for a value some task (or ``put``) produces."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING, Any

import sniffio
import trio

from .._serial import record_ref
from ._objects import CallbackWaiter, LoopWaiter

if TYPE_CHECKING:
    from ._runtime import Runtime


class ObjectRef:
    """A reference to an object that exists now or will once its task finishes.

    Pass it to ``actorlib.get``/``wait``, to other tasks (as a top-level
    argument it is replaced by its value), or ``await`` it in Trio or asyncio
    code. Equal refs name the same object.
    """

    __slots__ = ("_id", "_owner", "_runtime")  # no __weakref__: 8 bytes more per ref, and nothing uses it

    def __init__(self, object_id: bytes, owner: str, runtime: Runtime, *, counted: bool = False) -> None:
        self._id = object_id
        self._owner = owner
        self._runtime = runtime
        if not counted:
            runtime.objects.incref(object_id, owner)

    def __del__(self) -> None:
        try:
            self._runtime.objects.decref_later(self._id)
        except Exception:  # interpreter shutdown: the table may be gone
            pass

    def binary(self) -> bytes:
        return self._id

    def hex(self) -> str:
        return self._id.hex()

    def task_id(self) -> bytes:
        """Id of the task that produces this object."""
        return self._id[:16]

    @property
    def owner_address(self) -> str:
        return self._owner

    def __repr__(self) -> str:
        return f"ObjectRef({self._id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectRef) and other._id == self._id

    def __hash__(self) -> int:
        return hash(self._id)

    def __reduce__(self) -> Any:
        record_ref(self)
        return (_rebuild, (self._id, self._owner))

    # ---- waiting from other event loops -----------------------------------

    def __await__(self) -> Any:
        return self._get_async().__await__()

    async def _get_async(self) -> Any:
        runtime = self._runtime
        entry = runtime.entry_for(self)
        if entry.value is None:
            library = sniffio.current_async_library()
            if library == "trio":
                await _wait_trio(runtime, self._id, entry)
            elif library == "asyncio":
                await _wait_asyncio(runtime, self._id, entry)
            else:
                raise RuntimeError(f"ObjectRef cannot be awaited from {library}")
        return runtime.value_of(self, entry)

    def future(self) -> concurrent.futures.Future[Any]:
        """A concurrent.futures.Future completed with the value (or its error)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        runtime = self._runtime
        entry = runtime.entry_for(self)

        def settle() -> None:
            if not future.set_running_or_notify_cancel():
                return  # the caller cancelled the future
            try:
                future.set_result(runtime.value_of(self, entry))
            except BaseException as exc:
                future.set_exception(exc)

        if not runtime.objects.wait_on(entry, CallbackWaiter(settle)):
            settle()
        return future


async def _wait_trio(runtime: Runtime, object_id: bytes, entry: Any) -> None:
    token = trio.lowlevel.current_trio_token()
    event = trio.Event()
    waiter = LoopWaiter(lambda: token.run_sync_soon(event.set))
    if runtime.objects.wait_on(entry, waiter):
        try:
            await event.wait()
        finally:
            if not event.is_set():  # cancelled: leave nothing behind in the entry
                runtime.objects.unwait([object_id], waiter)


async def _wait_asyncio(runtime: Runtime, object_id: bytes, entry: Any) -> None:
    import asyncio  # loaded already wherever this runs; importing it costs everyone else ~9 ms

    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

    waiter = LoopWaiter(wake)
    if runtime.objects.wait_on(entry, waiter):
        try:
            await future
        finally:
            if not future.done() or future.cancelled():
                runtime.objects.unwait([object_id], waiter)


def _rebuild(object_id: bytes, owner: str) -> ObjectRef:
    from ._runtime import current

    return ObjectRef(object_id, owner, current())
