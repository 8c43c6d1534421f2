"""Calling actors, on the caller's side: creation, per-actor call queues, restarts, handles.

Runs on the runtime's Trio thread. Each actor this process calls has one
queue: calls are sent in submission order (a call whose arguments are not
ready holds back the ones after it), over one channel to the actor's
current process. When that process dies, in-flight calls are retried (up to
``max_task_retries``) or fail with ActorDiedError, and the queue waits for
the head to report the actor ALIVE again — or DEAD.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from .._serial import box_system
from .._wire import (
    ActorSpec, ActorView, CallActor, CancelTask, Channel, ConnectionFailed, CreateActor, ErrorValue, Inline, KillActor,
    PendingTask, StreamEnd, TaskDone, Value, WaitActor,
)  # fmt: skip
from ..exceptions import ActorDiedError, TaskCancelledError
from ._objects import CallbackWaiter

HEAD_RECONNECT_GRACE = 30.0  # seconds callers keep asking for an actor while the head is away
HEAD_RETRY = 0.5
CAUSE_WAIT = 2.0  # seconds a lost call's error waits to learn why its actor died

if TYPE_CHECKING:
    from ._refs import ObjectRef
    from ._runtime import Runtime


class CallSpec:
    """One actor method call, as its caller tracks it."""

    __slots__ = (
        "call_id", "actor_id", "method", "name", "args", "deps", "return_ids", "num_returns",
        "streaming", "attempt", "resolved", "pending", "nested", "created", "parent",
    )  # fmt: skip

    def __init__(
        self, *, call_id: bytes, actor_id: bytes, method: str, name: str, args: Inline,
        deps: list[ObjectRef], return_ids: list[bytes], streaming: bool, nested: list[ObjectRef] | None = None,
        parent: bytes = b"",
    ) -> None:  # fmt: skip
        self.call_id = call_id
        self.actor_id = actor_id
        self.method = method
        self.name = name
        self.args = args
        self.deps = deps
        self.return_ids = return_ids
        self.num_returns = len(return_ids)
        self.streaming = streaming
        self.attempt = 0
        self.resolved: list[Value] = []
        self.pending = len(deps)  # arguments not yet ready
        # Refs nested in the arguments, held while the call is: the actor borrows them first.
        self.nested = nested or []
        self.created = time.time()  # for the state API's pending calls
        self.parent = parent  # the task or actor call that made it, if one did (recursive cancel)


class _Actor:
    __slots__ = (
        "actor_id", "name", "max_task_retries", "queue", "inflight", "channel", "incarnation",
        "connecting", "dead", "registered", "handles", "escaped", "owned", "detached", "core",
    )  # fmt: skip

    def __init__(self, actor_id: bytes, name: str, max_task_retries: int) -> None:
        self.actor_id = actor_id
        self.name = name
        self.max_task_retries = max_task_retries
        self.queue: deque[CallSpec] = deque()
        self.inflight: dict[bytes, CallSpec] = {}
        self.channel: Channel | None = None
        self.incarnation = 0
        self.connecting = False
        self.dead: ErrorValue | None = None
        self.registered = trio.Event()
        self.handles = 0
        self.escaped = False
        self.owned = False
        self.detached = False
        self.core = ""  # its core socket when calls go to its exec socket: cancels go there


class ActorSubmitter:
    """Actors this process created or holds handles to."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._actors: dict[bytes, _Actor] = {}
        self._calls: dict[bytes, _Actor] = {}
        # Guards the call state: the runtime thread and, for the fast path, callers' threads.
        self._lock = threading.RLock()
        # Calls a caller's thread handed to the runtime thread (send_now said no) that submit()
        # has not queued yet, per actor: while any are on the way, no later call of that actor
        # may take the fast path, or it would overtake them.
        self._on_the_way: dict[bytes, int] = {}
        self._on_the_way_ids: set[bytes] = set()  # those calls (is_call must know them)
        self._handle_events: deque[tuple[bytes, int, str, int, bool]] = deque()
        self._creations: deque[tuple[ActorSpec, list[ObjectRef]]] = deque()
        self._creating = False
        self._created_sent = trio.Event()

    def _state(self, actor_id: bytes, name: str = "", retries: int = 0) -> _Actor:
        actor = self._actors.get(actor_id)
        if actor is None:
            actor = self._actors[actor_id] = _Actor(actor_id, name, retries)
            actor.registered.set()  # someone else created it
        return actor

    # ---- handles (counted from any thread, applied on the runtime thread) ---------------

    def handle_ref(self, actor_id: bytes, delta: int, name: str = "", retries: int = 0, escaped: bool = False) -> None:
        """Count a handle made (+1) or dropped (-1), or note it was sent elsewhere (``escaped``)."""
        self._handle_events.append((actor_id, delta, name, retries, escaped))
        self.rt.wake_housekeeping()

    @property
    def idle(self) -> bool:
        """No handle count change is queued."""
        return not self._handle_events

    def tracked(self) -> bool:
        """Whether this process knows of any actor (handles, calls): collect() looks at each."""
        return bool(self._actors)

    def collect(self) -> None:
        """Apply handle counts; an owned actor nobody can call any more is killed."""
        with self._lock:
            events = self._handle_events
            while events:
                actor_id, delta, name, retries, escaped = events.popleft()
                actor = self._state(actor_id, name, retries)
                actor.handles += delta
                actor.escaped = actor.escaped or escaped
            for actor in list(self._actors.values()):
                if actor.handles > 0 or actor.queue or actor.inflight or actor.connecting:
                    continue
                if actor.actor_id in self._on_the_way:
                    continue  # a call made before the last handle dropped has yet to reach submit()
                if actor.owned and not actor.registered.is_set():
                    continue  # its creation is still queued: kill it once it is sent
                if actor.owned and not actor.escaped and not actor.detached and actor.dead is None:
                    self.rt.nursery.start_soon(self._kill, actor.actor_id, True, "all its handles went out of scope")
                del self._actors[actor.actor_id]

    # ---- creation ------------------------------------------------------------------------

    def created_locally(self, spec: ActorSpec) -> None:
        """Register an actor this process creates (before its creation request completes).

        From any thread: call it before the creator's handle exists (that handle's count)."""
        with self._lock:
            actor = self._actors.get(spec.actor_id)
            if actor is None:
                actor = self._actors[spec.actor_id] = _Actor(spec.actor_id, spec.class_name, spec.max_task_retries)
            actor.registered = trio.Event()
            actor.owned = True
            actor.detached = spec.detached
            actor.handles += 1  # the creator's handle, counted here so no sweep sees zero

    def owned_alive(self) -> list[bytes]:
        """Non-detached actors this process created that are not known to be dead."""
        with self._lock:
            return [a.actor_id for a in self._actors.values() if a.owned and not a.detached and a.dead is None]

    def forget(self, actor_id: bytes) -> None:
        """Drop a provisional registration (get_if_exists found another actor)."""
        with self._lock:
            actor = self._actors.pop(actor_id, None)
            if actor is not None:
                actor.registered.set()

    def create(self, spec: ActorSpec, deps: list[ObjectRef]) -> None:
        """Create an actor once its constructor arguments are ready (never blocks).

        Creations are sent in the order they were asked for (a supervision
        group's members start in that order, which rest_for_one relies on).
        """
        self._creations.append((spec, deps))
        if not self._creating:
            self._creating = True
            self.rt.nursery.start_soon(self._send_creations)

    async def _send_creations(self) -> None:
        try:
            while self._creations:
                spec, deps = self._creations.popleft()
                for ref in deps:
                    await _ready(self.rt, ref)
                self.rt.nursery.start_soon(self._await_creation, spec, deps)
                await self._created_sent.wait()
                self._created_sent = trio.Event()
        finally:
            self._creating = False

    async def _await_creation(self, spec: ActorSpec, deps: list[ObjectRef]) -> None:
        try:
            await self.register(spec, deps, sent=self._created_sent)
        except (ActorDiedError, ValueError, ConnectionError):
            pass  # the actor is marked dead; calls to it raise

    async def register(
        self, spec: ActorSpec, deps: list[ObjectRef], get_if_exists: bool = False, sent: trio.Event | None = None
    ) -> ActorView | None:
        """Send the creation request; return the existing actor's view for get_if_exists.

        ``sent`` is set once the request is on its way (or failed).
        """
        actor = self._actors.get(spec.actor_id)
        if actor is None:  # forgotten before its creation went out (cannot happen while it is pending)
            if sent is not None:
                sent.set()
            return None
        values = [self.rt.objects.get(ref.binary()).value for ref in deps]  # type: ignore[union-attr]
        failed = next((v for v in values if type(v) is ErrorValue), None)
        try:
            if failed is not None:
                raise ActorDiedError(f"{spec.class_name}'s constructor argument failed: {_text(failed)}")
            spec = _with_resolved(spec, values)
            reply = await self.rt.head.request(
                lambda req: CreateActor(req=req, spec=spec, get_if_exists=get_if_exists), sent=sent
            )
            if reply.error:
                raise ValueError(reply.error)
            return reply.view
        except (ActorDiedError, ValueError, ConnectionError) as exc:
            with self._lock:
                self._die(actor, box_system(exc if isinstance(exc, ActorDiedError) else ActorDiedError(str(exc))))
            raise
        finally:
            actor.registered.set()
            if sent is not None:
                sent.set()

    # ---- what has not started (the state API) --------------------------------------------

    def held_refs(self, counts: dict[bytes, int]) -> None:
        """Add to ``counts`` the refs that calls not finished hold (arguments, nested refs)."""
        with self._lock:
            calls = [call for actor in self._actors.values() for call in (*actor.queue, *actor.inflight.values())]
        for call in calls:
            for ref in (*call.deps, *call.nested):
                object_id = ref.binary()
                counts[object_id] = counts.get(object_id, 0) + 1

    def pending(self, limit: int) -> tuple[list[PendingTask], int]:
        """Up to ``limit`` calls not known to have started, and how many there are: queued
        (for their arguments, or behind earlier calls / the actor's start) or sent to it."""
        job_id = self.rt.identity.job_id
        tasks: list[PendingTask] = []
        total = 0
        with self._lock:
            for actor in self._actors.values():
                total += len(actor.queue) + len(actor.inflight)
                for call in actor.queue:
                    state = "PENDING_ARGS_AVAIL" if call.pending else "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY"
                    tasks.append(PendingTask(call.call_id, call.name, job_id, actor.actor_id, state, call.created, call.attempt))
                for call in actor.inflight.values():
                    tasks.append(
                        PendingTask(call.call_id, call.name, job_id, actor.actor_id, "SUBMITTED_TO_WORKER", call.created, call.attempt)
                    )
                if len(tasks) >= limit:
                    break
        return tasks[:limit], total

    # ---- calls ---------------------------------------------------------------------------

    def submit(self, call: CallSpec) -> None:
        with self._lock:
            self._arrived(call.actor_id)
            self._on_the_way_ids.discard(call.call_id)
            actor = self._state(call.actor_id)
            if actor.dead is not None:
                self._finish(call, actor.dead)
                return
            actor.queue.append(call)
            for ref in call.deps:
                if not self.rt.objects.wait_on(self.rt.entry_for(ref), CallbackWaiter(lambda c=call, a=actor: self._arg_ready(a, c))):
                    call.pending -= 1
            self._pump(actor)

    def _arg_ready(self, actor: _Actor, call: CallSpec) -> None:
        with self._lock:
            call.pending -= 1
            if call.pending == 0:
                self._pump(actor)

    def _pump(self, actor: _Actor) -> None:
        if actor.channel is None or actor.channel.closed:
            if actor.queue and not actor.connecting and actor.dead is None and not self.rt.closed:
                actor.connecting = True
                self.rt.nursery.start_soon(self._connect, actor)
            return
        while actor.queue and actor.queue[0].pending == 0:
            call = actor.queue.popleft()
            values = [self.rt.objects.get(ref.binary()).value for ref in call.deps]  # type: ignore[union-attr]
            failed = next((v for v in values if type(v) is ErrorValue), None)
            if failed is not None:
                self._finish(call, failed)  # type: ignore[arg-type]
                continue
            call.resolved = values  # type: ignore[assignment]
            self._send(actor, call)

    def send_now(self, call: CallSpec) -> bool:
        """On the caller's thread: send a call at once if the actor is connected and nothing
        is queued before it (False: the caller must submit it through the runtime thread,
        and until it arrives there, later calls of this actor take that way too)."""
        with self._lock:
            actor = self._actors.get(call.actor_id)
            on_the_way = self._on_the_way
            if (
                call.deps or actor is None or actor.queue or actor.dead is not None or actor.connecting
                or call.actor_id in on_the_way or actor.channel is None or actor.channel.closed
            ):  # fmt: skip
                on_the_way[call.actor_id] = on_the_way.get(call.actor_id, 0) + 1
                self._on_the_way_ids.add(call.call_id)
                return False
            self._send(actor, call, threadsafe=True)
        return True

    def _arrived(self, actor_id: bytes) -> None:
        left = self._on_the_way.get(actor_id, 0) - 1
        if left > 0:
            self._on_the_way[actor_id] = left
        else:
            self._on_the_way.pop(actor_id, None)

    def _send(self, actor: _Actor, call: CallSpec, threadsafe: bool = False) -> None:
        ident = self.rt.identity
        message = CallActor(
            call_id=call.call_id,
            method=call.method,
            args=call.args,
            resolved=call.resolved,
            num_returns=call.num_returns,
            job_id=ident.job_id,
            owner=ident.address,
            owner_id=ident.core_id,
            streaming=call.streaming,
            attempt=call.attempt,
            nested=[(ref.binary(), ref.owner_address) for ref in call.nested] if call.nested else [],
        )
        actor.inflight[call.call_id] = call
        self._calls[call.call_id] = actor
        assert actor.channel is not None
        try:
            if threadsafe:
                actor.channel.send_threadsafe(message)
            else:
                actor.channel.send_nowait(message)
        except (trio.ClosedResourceError, trio.RunFinishedError):
            pass  # on_channel_lost handles it

    async def _connect(self, actor: _Actor) -> None:
        """Find the actor's current process (asking the head) and connect to it; or mark it dead."""
        started = trio.current_time()
        try:
            await actor.registered.wait()
            while actor.dead is None:
                try:
                    view = await self._locate(actor)
                except ConnectionError as exc:
                    if trio.current_time() - started < HEAD_RECONNECT_GRACE and not self.rt.closed:
                        await trio.sleep(HEAD_RETRY)  # the head may be restarting: ask again
                        continue
                    self._dead(actor, f"cannot reach the head to find actor {actor.name}: {exc}")
                    return
                if view is None or view.state == "DEAD":
                    cause = view.cause if view is not None else "the head does not know it"
                    self._dead(actor, f"the actor {actor.name} ({actor.actor_id.hex()}) is dead: {cause}")
                    return
                try:
                    channel = await self.rt.peers.channel_to(view.address)
                except ConnectionFailed:  # it died already (or froze): wait for the next incarnation
                    actor.incarnation = view.incarnation
                    continue
                with self._lock:
                    actor.channel = channel
                    actor.incarnation = view.incarnation
                    actor.core = view.core
                break
        finally:
            actor.connecting = False
        with self._lock:
            self._pump(actor)

    async def _locate(self, actor: _Actor) -> ActorView | None:
        # Answered once it is ALIVE or DEAD: as long as that takes (its __init__ may load a model).
        reply = await self.rt.head.request(
            lambda req: WaitActor(req=req, actor_id=actor.actor_id, after=actor.incarnation), long=True
        )
        return reply.view  # type: ignore[no-any-return]

    def _dead(self, actor: _Actor, message: str) -> None:
        with self._lock:
            self._die(actor, box_system(ActorDiedError(message)))

    def is_call(self, call_id: bytes) -> bool:
        """Whether ``call_id`` is a call of this process still waiting here or at its actor."""
        with self._lock:
            return (
                call_id in self._calls or call_id in self._on_the_way_ids
                or any(call.call_id == call_id for a in self._actors.values() for call in a.queue)
            )  # fmt: skip

    def cancel_children(self, parent: bytes) -> None:
        """Cancel (recursively) every call this process made while running task or call ``parent``."""
        with self._lock:
            children = [
                call.call_id for actor in self._actors.values()
                for call in (*actor.queue, *actor.inflight.values()) if call.parent == parent
            ]  # fmt: skip
        for call_id in children:
            self.cancel(call_id, recursive=True)

    def cancel(self, call_id: bytes, recursive: bool) -> bool:
        """Cancel a call this process made (False: it is not one, or it is over). One still
        here is answered TaskCancelledError at once; one sent to its actor is refused there if
        it has not started, stopped if it runs in an async actor's event loop, and otherwise
        only flagged for ``is_canceled()`` (a running sync method is never interrupted, as in Ray)."""
        with self._lock:
            for actor in self._actors.values():
                for call in actor.queue:
                    if call.call_id == call_id:
                        actor.queue.remove(call)
                        error = TaskCancelledError(f"{call.name}() was cancelled before it was sent to its actor")
                        self._finish(call, box_system(error))
                        return True
            actor = self._calls.get(call_id)
            call = actor.inflight.get(call_id) if actor is not None else None
            channel = actor.channel if actor is not None else None
            core = actor.core if actor is not None else ""
        if call is None:
            return False
        message = CancelTask(task_id=call_id, num_returns=call.num_returns, recursive=recursive)
        if channel is not None and not channel.closed:
            try:  # on the calls' own channel: a sync actor reads it there between calls
                channel.send_nowait(message)
            except trio.ClosedResourceError:
                pass  # the actor's process is gone: its calls fail or are retried as for any loss
        if core:  # and to its runtime thread, which a sync actor's running method cannot hold up
            self.rt.nursery.start_soon(self._send_to_core, core, message)
        return True

    async def _send_to_core(self, address: str, message: CancelTask) -> None:
        try:
            channel = await self.rt.peers.channel_to(address)
            channel.send_nowait(message)
        except (ConnectionFailed, trio.ClosedResourceError):
            pass  # gone: the copy on the calls' channel (or the actor's death) answers the call

    def on_done(self, done: TaskDone) -> bool:
        with self._lock:
            actor = self._calls.pop(done.task_id, None)
            if actor is None:
                return False
            call = actor.inflight.pop(done.task_id, None)
            if call is not None:
                self._complete(call, done.returns)
            return True

    def on_stream_end(self, end: StreamEnd) -> bool:
        with self._lock:
            actor = self._calls.pop(end.task_id, None)
            if actor is not None:
                actor.inflight.pop(end.task_id, None)
            return actor is not None

    def on_channel_lost(self, channel: Channel) -> None:
        with self._lock:
            for actor in list(self._actors.values()):
                if actor.channel is not channel:
                    continue
                actor.channel = None
                calls, actor.inflight = list(actor.inflight.values()), {}
                retry, lost = [], []
                for call in calls:
                    self._calls.pop(call.call_id, None)
                    if actor.max_task_retries == -1 or call.attempt < actor.max_task_retries:
                        call.attempt += 1
                        retry.append(call)
                    else:
                        lost.append(call)
                if lost:
                    try:
                        self.rt.nursery.start_soon(self._fail_lost, actor, lost, actor.incarnation)
                    except RuntimeError:  # the runtime is shutting down: fail them now
                        self._fail(actor, lost, "")
                actor.queue.extendleft(reversed(retry))
                self._pump(actor)

    async def _fail_lost(self, actor: _Actor, calls: list[CallSpec], incarnation: int) -> None:
        """Fail the calls that were running when the actor's process died, with no retry left,
        saying why it died: what its node told the head (killed by a signal, the memory
        monitor, ...), if the head knows within CAUSE_WAIT seconds."""
        cause = ""
        with trio.move_on_after(CAUSE_WAIT):
            try:
                reply = await self.rt.head.request(
                    lambda req: WaitActor(req=req, actor_id=actor.actor_id, after=incarnation, ended=True), long=True
                )
                cause = reply.view.cause if reply.view is not None else ""
            except ConnectionError:
                pass
        with self._lock:
            self._fail(actor, calls, cause)

    def _fail(self, actor: _Actor, calls: list[CallSpec], cause: str) -> None:
        why = f" ({cause})" if cause else ""
        for call in calls:
            error = ActorDiedError(
                f"the actor {actor.name} died while running {call.name}(){why}; "
                f"max_task_retries={actor.max_task_retries} allows no retry",
                final=False,
            )
            self._finish(call, box_system(error))

    def _die(self, actor: _Actor, error: ErrorValue) -> None:
        actor.dead = error
        for call in [*actor.inflight.values(), *actor.queue]:
            self._calls.pop(call.call_id, None)
            self._finish(call, error)
        actor.inflight.clear()
        actor.queue.clear()

    def _finish(self, call: CallSpec, error: ErrorValue) -> None:
        if call.streaming:
            self.rt.streams.finish(call.call_id, 0, error)
        else:
            self._complete(call, [error] * call.num_returns)

    def _complete(self, call: CallSpec, values: list[Value]) -> None:
        for object_id, value in zip(call.return_ids, values):
            self.rt.objects.complete(object_id, value)
        call.deps = []

    # ---- kill -------------------------------------------------------------------------------

    async def kill(self, actor_id: bytes, no_restart: bool) -> None:
        """Kill an actor; with ``no_restart`` this process's pending calls fail at once."""
        reason = "killed by actorlib.kill()"
        if no_restart:
            with self._lock:
                actor = self._actors.get(actor_id)
                if actor is not None and actor.dead is None:
                    self._die(actor, box_system(ActorDiedError(f"the actor {actor.name} was {reason}")))
        await self._kill(actor_id, no_restart, reason)

    async def _kill(self, actor_id: bytes, no_restart: bool, reason: str) -> None:
        try:
            await self.rt.head.request(lambda req: KillActor(req=req, actor_id=actor_id, no_restart=no_restart, reason=reason))
        except ConnectionError:
            pass


async def _ready(runtime: Runtime, ref: ObjectRef) -> None:
    """Wait (on the runtime thread) until ``ref`` has a value or an error."""
    entry = runtime.entry_for(ref)
    event = trio.Event()
    if runtime.objects.wait_on(entry, CallbackWaiter(event.set)):
        await event.wait()


def _with_resolved(spec: ActorSpec, values: list[Any]) -> ActorSpec:
    import msgspec

    return msgspec.structs.replace(spec, resolved=values)


def _text(error: ErrorValue) -> str:
    from .._serial import unbox

    return str(unbox(error)).splitlines()[0]
