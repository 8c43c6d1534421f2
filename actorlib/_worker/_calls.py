"""Running one call (a task or an actor method) in a worker: arguments in, values or a stream out."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import trio

from .. import _ids
from .._core import Runtime, unpack
from .._event_loops import EXPLICIT, loop_of
from .._serial import LOST_ARGUMENT, box, box_system, deserialize, serialize
from .._wire import Channel, ErrorValue, Inline, Stored, StreamEnd, StreamItem, TaskDone, Value
from ..exceptions import ActorDiedError, AsyncioActorExit, ObjectLostError, TaskCancelledError
from ._task_events import error_info


class Cancelled(BaseException):
    """Raised in a thread running a call that was cancelled."""


def resolve(runtime: Runtime, value: Value) -> Any:
    """The Python value of a resolved argument (zero-copy for stored ones)."""
    if type(value) is Inline:
        return deserialize(value.data, value.buffers)
    if type(value) is Stored:
        try:
            return runtime.read_stored(value)
        except ObjectLostError as exc:
            # Its owner can recompute or refetch it and run the call again.
            setattr(exc, LOST_ARGUMENT, value.object_id)
            raise
    raise AssertionError(f"unexpected argument value {type(value).__name__}")


def arguments(runtime: Runtime, args: Inline, resolved: list[Value]) -> tuple[list[Any], dict[str, Any]]:
    return unpack(args, [resolve(runtime, value) for value in resolved])


def pack(runtime: Runtime, name: str, result: Any, count: int, owner_id: bytes) -> list[Value]:
    """The return values of a call, each inline or put in the store (owned by ``owner_id``).

    A generator with an integer ``num_returns`` gives one return value per ``yield``, as in Ray.
    """
    if inspect.isgenerator(result):
        items = list(result)
        if len(items) != count:
            raise ValueError(f"{name}() yielded {len(items)} values, but num_returns={count}")
    elif count == 0:
        return []
    elif count == 1:
        items = [result]
    else:
        items = list(result)
        if len(items) != count:
            raise ValueError(f"{name}() returned {len(items)} values, but num_returns={count}")
    return [value_of(runtime, name, item, owner_id) for item in items]


def value_of(runtime: Runtime, name: str, item: Any, owner_id: bytes) -> Value:
    serialized = serialize(item, what=f"the return value of {name}()")
    if serialized.refs:
        runtime.objects.mark_escaped([ref.binary() for ref in serialized.refs])
    if serialized.inline:
        return serialized.to_inline()
    return runtime.store_put(_ids.put_id(), serialized, owner_id)


def failed(exc: BaseException, name: str, count: int) -> list[ErrorValue]:
    if isinstance(exc, Cancelled):
        return [box_system(TaskCancelledError(f"{name}() was cancelled while running"))] * count
    if isinstance(exc, AsyncioActorExit):  # exit_actor(): the call's caller sees the actor die
        return [box_system(ActorDiedError(f"the actor exited in {name}(): {exc}"))] * count
    return [box(exc, name)] * count


class Reply:
    """Sends a call's results back to its caller, from any thread."""

    def __init__(
        self, runtime: Runtime, channel: Channel, call_id: bytes, name: str = "", job_id: str = "",
        actor_id: bytes = b"", attempt: int = 0,
    ) -> None:  # fmt: skip
        self.runtime = runtime
        self.channel = channel
        self.call_id = call_id
        self.started = time.perf_counter()
        self.sent = False  # the final answer (done or end) went out
        # A named call is recorded for ``actorlib list tasks`` and the timeline.
        self.recorder = runtime.task_events if name else None
        if self.recorder is not None:
            self.recorder.started(call_id, name, job_id, actor_id, attempt)

    def done(self, returns: list[Value]) -> None:
        elapsed = time.perf_counter() - self.started
        self.sent = True
        self.send(TaskDone(task_id=self.call_id, returns=returns, elapsed=elapsed))
        if self.recorder is not None:
            self.recorder.finished(self.call_id, *error_info(returns))

    def abandon(self) -> None:
        """The call will never run (cancelled first, or its caller left): it is recorded as cancelled."""
        if self.recorder is not None and not self.sent:
            self.recorder.finished(self.call_id, "TaskCancelledError: cancelled before it ran")

    def item(self, index: int, value: Value) -> None:
        self.send(StreamItem(task_id=self.call_id, index=index, value=value))

    def end(self, count: int, error: ErrorValue | None = None) -> None:
        self.sent = True
        self.send(StreamEnd(task_id=self.call_id, count=count, error=error))
        if self.recorder is not None:
            self.recorder.finished(self.call_id, *error_info([error] if error is not None else []))

    def send(self, message: Any) -> None:
        try:
            self.channel.send_threadsafe(message)
        except (trio.ClosedResourceError, trio.RunFinishedError):
            pass  # the caller is gone, or this process is shutting down

    @property
    def abandoned(self) -> bool:
        return self.channel.closed


def send_quietly(channel: Channel, message: Any) -> None:
    if not channel.closed:
        try:
            channel.send_nowait(message)
        except trio.ClosedResourceError:
            pass


def run_sync(
    runtime: Runtime, fn: Callable[..., Any], call: Any, reply: Reply, name: str, cancelled: Callable[[], bool] | None = None
) -> None:
    """Run a call on this thread and reply (a stream for generators, when asked for one).
    ``cancelled`` (sync actor methods, which a cancel does not interrupt): a generator
    stops at its next ``yield`` once it turns True."""
    try:
        args, kwargs = arguments(runtime, call.args, call.resolved)
        nested = getattr(call, "nested", None)
        if nested:  # its submitter holds these refs until we are done: borrow them first
            runtime.borrow([object_id for object_id, _ in nested])
        result = fn(*args, **kwargs)
        if inspect.iscoroutine(result):
            result = run_coroutine(fn, result)
        elif inspect.isasyncgen(result):
            if call.streaming:
                run_coroutine(fn, stream_async(runtime, result, call, reply, name))
                return
            result = iter_of(run_coroutine(fn, collect(result)))
        if call.streaming:
            stream_sync(runtime, result, call, reply, name, cancelled)
            return
        if cancelled is not None and cancelled():  # as in Ray: a call cancelled while it ran
            raise Cancelled  # ends in TaskCancelledError, not its value (an error it raised wins)
        reply.done(pack(runtime, name, result, call.num_returns, call.owner_id))
    except BaseException as exc:
        if call.streaming:
            reply.end(0, failed(exc, name, 1)[0])
        else:
            reply.done(failed(exc, name, call.num_returns))


async def stream_async(runtime: Runtime, result: Any, call: Any, reply: Reply, name: str) -> None:
    """Send what an async generator (or a plain iterable) yields, one StreamItem each; end the stream."""
    count = 0
    try:
        if inspect.isasyncgen(result):
            async for item in result:
                reply.item(count, value_of(runtime, name, item, call.owner_id))
                count += 1
        else:
            for item in result:
                reply.item(count, value_of(runtime, name, item, call.owner_id))
                count += 1
    except (Exception, Cancelled) as exc:  # not the event loop's own cancellation
        reply.end(count, failed(exc, name, 1)[0])
        return
    reply.end(count)


async def collect(agen: Any) -> list[Any]:
    return [item async for item in agen]


def iter_of(items: list[Any]) -> Any:
    """``items`` as a generator, so ``pack`` counts them as yielded values."""
    return (item for item in items)


def stream_sync(
    runtime: Runtime, result: Any, call: Any, reply: Reply, name: str, cancelled: Callable[[], bool] | None = None
) -> None:
    if not inspect.isgenerator(result) and not hasattr(result, "__iter__"):
        raise TypeError(f"{name}() has num_returns='streaming' but returned {type(result).__name__}, not a generator")
    count = 0
    try:
        for item in result:
            reply.item(count, value_of(runtime, name, item, call.owner_id))
            count += 1
            if cancelled is not None and cancelled():  # as in Ray: GeneratorExit at the yield
                getattr(result, "close", lambda: None)()
                raise Cancelled
    except BaseException as exc:
        reply.end(count, failed(exc, name, 1)[0])
        return
    reply.end(count)


def run_coroutine(fn: Callable[..., Any], coroutine: Any) -> Any:
    """Run an ``async def`` remote function's coroutine to completion on its event loop:
    asyncio as in Ray, or Trio for Trio code (chosen as for async actors)."""
    code = getattr(fn, "__code__", None)
    loop = _loops.get(code) if code is not None else None
    if loop is None:
        loop = loop_of([fn], getattr(fn, "__module__", "") or "", getattr(fn, EXPLICIT, None))
        if code is not None:
            _loops[code] = loop
    if loop == "trio":
        return trio.run(_await, coroutine)
    import asyncio  # only workers that run asyncio code pay for it

    return asyncio.run(coroutine)


_loops: dict[Any, str] = {}  # by code object: the loop each async function runs on


async def _await(coroutine: Any) -> Any:
    return await coroutine
