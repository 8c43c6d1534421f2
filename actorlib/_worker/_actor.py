"""An actor inside its worker process: the instance, and how its method calls run.

``sync``: methods run one at a time, in arrival order, on the main thread
(straight from the exec socket).
``threaded``: sync methods with ``max_concurrency`` (or concurrency groups)
above one run on that many threads per group. ``trio`` / ``asyncio``: the
main thread runs that event loop; ``async def`` methods run concurrently
on it, up to each group's limit; plain methods run inline on the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import trio

from .._core import CURRENT_CALL, Runtime
from .._serial import box_system, deserialize
from .._wire import TERMINATE, ActorSpec, CallActor, Channel
from ..exceptions import ActorDiedError, AsyncioActorExit, TaskCancelledError
from ._calls import Cancelled, Reply, arguments, collect, failed, iter_of, pack, run_sync, stream_async

DEFAULT_GROUP = ""
REMEMBERED_CANCELS = 10_000


class ActorRunner:
    """One actor instance and the machinery that runs its calls."""

    def __init__(self, runtime: Runtime, spec: ActorSpec) -> None:
        self.rt = runtime
        self.spec = spec
        cls = deserialize(spec.class_blob)
        args, kwargs = arguments(runtime, spec.args, spec.resolved)
        self.instance = cls(*args, **kwargs)
        limits = {DEFAULT_GROUP: max(1, spec.max_concurrency), **spec.concurrency_groups}
        self.limits = limits
        if spec.loop in ("trio", "asyncio"):
            self.mode = spec.loop
        else:
            self.mode = "threaded" if any(n > 1 for n in limits.values()) or len(limits) > 1 else "sync"
        self._pools: dict[str, ThreadPoolExecutor] = {}
        if self.mode == "threaded":
            self._pools = {group: ThreadPoolExecutor(n, thread_name_prefix=f"actor-{group or 'default'}") for group, n in limits.items()}
        self._loop_handoff: Any = None
        self.exited = ""  # why, once exit_actor() was called: later calls are refused
        # Async actors run calls at once: numbered as they come, so that __ray_terminate__ can
        # wait for the calls that came before it (woken through ``_finished`` as calls end).
        self._arrived = 0
        self._running: set[int] = set()
        self._finished: list[Any] = []
        self._terminating = 0  # the number of the first __ray_terminate__ call: later ones are refused
        # Cancelled calls (the last REMEMBERED_CANCELS): refused if they have not started, stopped
        # if they run in the event loop (``_stoppers``), else only seen by is_canceled().
        self._cancel_lock = threading.Lock()
        self._cancelled: set[bytes] = set()
        self._cancel_order: deque[bytes] = deque()
        self._running_calls: dict[bytes, Any] = {}  # call id -> its trio.CancelScope or asyncio.Task
        self._in_loop: Callable[[Callable[[], Any]], None] = lambda fn: None  # run fn in the event loop, from any thread

    # ---- exit_actor() -------------------------------------------------------------------

    def exit(self, why: str = "exit_actor() was called") -> None:
        """End this actor for good, from one of its methods: ask (once) for it to be killed
        without restart, then raise AsyncioActorExit to unwind the calling method."""
        if not self.exited:
            self.exited = why
            actors, actor_id = self.rt.actors, self.spec.actor_id
            self.rt.soon(lambda: self.rt.nursery.start_soon(actors._kill, actor_id, True, self.exited))
        raise AsyncioActorExit(self.exited)

    # ---- cancellation (ray.cancel of a call) --------------------------------------------

    def cancel(self, call_id: bytes) -> bool:
        """(Any thread.) The caller cancelled ``call_id``: stop it if it runs in the event loop;
        a call not started yet is refused when its turn comes. False if it was cancelled
        already (a plain sync actor's caller sends the cancel twice: see ActorSubmitter.cancel)."""
        with self._cancel_lock:
            if call_id in self._cancelled:
                return False
            self._cancelled.add(call_id)
            self._cancel_order.append(call_id)
            if len(self._cancel_order) > REMEMBERED_CANCELS:
                self._cancelled.discard(self._cancel_order.popleft())
        # (Lock-free against _started: it registers before it looks at _cancelled, and this looks
        # after adding, so one of the two sees the other; cancelling twice does no harm.)
        running = self._running_calls.get(call_id)
        if running is not None:
            self._in_loop(running.cancel)
        return True

    def cancelled(self, call_id: bytes) -> bool:
        return call_id in self._cancelled

    def _started(self, call_id: bytes, running: Any) -> bool:
        """Register a call running in the event loop (its scope or task); False if it was
        cancelled already."""
        self._running_calls[call_id] = running
        return call_id not in self._cancelled

    def _answer_cancelled(self, call: CallActor, reply: Reply, name: str, running: bool) -> None:
        if running:
            error = failed(Cancelled(), name, 1)[0]
        else:
            error = box_system(TaskCancelledError(f"{name}() was cancelled before it ran"))
        if call.streaming:
            reply.end(0, error)
        else:
            reply.done([error] * call.num_returns)

    def _refused(self, call: CallActor, reply: Reply, name: str, number: int = 0) -> bool:
        """Answer ``call`` with ActorDiedError if the actor exited, or (async actors) is exiting
        once the calls before a __ray_terminate__ that came before this one ended: it never runs.
        A cancelled call is answered TaskCancelledError."""
        if call.call_id in self._cancelled:
            self._answer_cancelled(call, reply, name, running=False)
            return True
        why = self.exited or (f"{TERMINATE}() was called" if 0 < self._terminating < number else "")
        if not why:
            return False
        error = box_system(ActorDiedError(f"the actor {self.spec.class_name} exited before {name}() ran: {why}"))
        if call.streaming:
            reply.end(0, error)
        else:
            reply.done([error] * call.num_returns)
        return True

    # ---- on the runtime thread ------------------------------------------------------

    def submit(self, call: CallActor, channel: Channel) -> None:
        """From the runtime thread (threaded and async actors; sync ones are called inline)."""
        if self.mode == "threaded":
            self._pools[self._group(call.method)].submit(self.run_one, call, channel)
        else:
            self._loop_handoff(call, channel)

    def _group(self, method: str) -> str:
        info = self.spec.methods.get(method)
        group = info.group if info is not None else DEFAULT_GROUP
        return group if group in self.limits else DEFAULT_GROUP

    # ---- sync and threaded calls -------------------------------------------------------

    def run_one(self, call: CallActor, channel: Channel) -> None:
        name = f"{self.spec.class_name}.{call.method}"
        reply = Reply(self.rt, channel, call.call_id, name, call.job_id, self.spec.actor_id, call.attempt)
        if self._refused(call, reply, name):
            return
        try:
            method = self._method(call.method)
        except AttributeError as exc:
            reply.done(failed(exc, name, call.num_returns))
            return
        current = CURRENT_CALL.set(call.call_id)
        try:
            run_sync(self.rt, method, call, reply, name, lambda: call.call_id in self._cancelled)
        finally:
            CURRENT_CALL.reset(current)

    def _method(self, name: str) -> Any:
        if name == TERMINATE:
            return self._terminate
        if name.startswith("__") and name != "__call__":
            raise AttributeError(f"{self.spec.class_name} actors do not expose {name}()")
        return getattr(self.instance, name)

    def _terminate(self) -> None:
        """Ray's ``actor.__ray_terminate__.remote()``: exit_actor() once the calls before it ran."""
        self.exit(f"{TERMINATE}() was called")

    # ---- async actors: the main thread runs the loop ------------------------------------

    def serve(self, ready: Any) -> None:
        """Run the actor's event loop on this (the main) thread until the process exits."""
        if self.mode == "trio":
            trio.run(self._serve_trio, ready)
        elif self.mode == "asyncio":
            asyncio.run(self._serve_asyncio(ready))

    async def _serve_trio(self, ready: Any) -> None:
        token = trio.lowlevel.current_trio_token()
        self._in_loop = token.run_sync_soon
        send, receive = trio.open_memory_channel[tuple[CallActor, Channel]](float("inf"))
        limiters = {group: trio.CapacityLimiter(n) for group, n in self.limits.items()}
        self._loop_handoff = lambda call, channel: token.run_sync_soon(send.send_nowait, (call, channel))
        ready()
        async with trio.open_nursery() as nursery:
            async for call, channel in receive:
                nursery.start_soon(self._run_async, call, channel, limiters[self._group(call.method)])

    async def _serve_asyncio(self, ready: Any) -> None:
        loop = asyncio.get_running_loop()
        self._in_loop = loop.call_soon_threadsafe
        inbox: asyncio.Queue[tuple[CallActor, Channel]] = asyncio.Queue()
        limiters = {group: asyncio.Semaphore(n) for group, n in self.limits.items()}
        self._loop_handoff = lambda call, channel: loop.call_soon_threadsafe(inbox.put_nowait, (call, channel))
        ready()
        running: set[asyncio.Task[None]] = set()
        while True:
            call, channel = await inbox.get()
            task = asyncio.create_task(self._run_async(call, channel, limiters[self._group(call.method)]))
            running.add(task)
            task.add_done_callback(running.discard)

    async def _run_async(self, call: CallActor, channel: Channel, limiter: Any) -> None:
        self._arrived += 1
        number = self._arrived
        self._running.add(number)
        try:
            await self._run_async_call(call, channel, limiter, number)
        finally:
            self._running.discard(number)
            if self._finished:
                waiters, self._finished = self._finished, []
                for event in waiters:
                    event.set()

    async def _after_earlier_calls(self, number: int) -> None:
        while any(earlier < number for earlier in self._running):
            event = trio.Event() if self.mode == "trio" else asyncio.Event()
            self._finished.append(event)
            await event.wait()

    async def _run_async_call(self, call: CallActor, channel: Channel, limiter: Any, number: int) -> None:
        name = f"{self.spec.class_name}.{call.method}"
        reply = Reply(self.rt, channel, call.call_id, name, call.job_id, self.spec.actor_id, call.attempt)
        call_id = call.call_id
        CURRENT_CALL.set(call_id)  # (each call runs in its own task, with its own context)
        try:
            if self.mode == "trio":
                with trio.CancelScope() as scope:
                    if self._started(call_id, scope):
                        await self._run_async_body(call, reply, name, limiter, number)
                    else:
                        self._answer_cancelled(call, reply, name, running=False)
                if scope.cancelled_caught and not reply.sent:
                    self._answer_cancelled(call, reply, name, running=True)
            else:
                if not self._started(call_id, asyncio.current_task()):
                    self._answer_cancelled(call, reply, name, running=False)
                    return
                try:
                    await self._run_async_body(call, reply, name, limiter, number)
                except asyncio.CancelledError:
                    if call_id not in self._cancelled or reply.sent:
                        raise
                    self._answer_cancelled(call, reply, name, running=True)
        finally:
            self._running_calls.pop(call_id, None)

    async def _run_async_body(self, call: CallActor, reply: Reply, name: str, limiter: Any, number: int) -> None:
        if call.method == TERMINATE and not self._terminating:
            self._terminating = number
            await self._after_earlier_calls(number)
        async with limiter:
            if self._refused(call, reply, name, number):
                return
            try:
                method = self._method(call.method)
                args, kwargs = arguments(self.rt, call.args, call.resolved)
                if call.nested:  # borrow them before running, off the loop's thread
                    await self._borrow([object_id for object_id, _ in call.nested])
                if call.streaming:
                    await stream_async(self.rt, method(*args, **kwargs), call, reply, name)
                    return
                result = method(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                elif inspect.isasyncgen(result):  # an integer num_returns: one value per yield
                    result = iter_of(await collect(result))
                reply.done(pack(self.rt, name, result, call.num_returns, call.owner_id))
            except BaseException as exc:
                if isinstance(exc, (trio.Cancelled, asyncio.CancelledError)):
                    raise
                if call.streaming:
                    reply.end(0, failed(exc, name, 1)[0])
                else:
                    reply.done(failed(exc, name, call.num_returns))

    async def _borrow(self, object_ids: list[bytes]) -> None:
        if self.mode == "trio":
            await trio.to_thread.run_sync(self.rt.borrow, object_ids)
        else:
            await asyncio.get_running_loop().run_in_executor(None, self.rt.borrow, object_ids)
