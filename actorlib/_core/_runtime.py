"""The per-process runtime: a Trio loop on a daemon thread, and the sync API's bridge into it.

Drivers and workers run the same Runtime; user code runs on other threads
(the main thread) and calls in. Hot paths avoid a thread round trip: task
submission queues work and wakes the loop at most once per burst, and
``get`` of a finished object never enters the loop.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from .. import _ids
from .._serial import box_system, deserialize, serialize, unbox
from .._store import RemoteReader, StoreClient
from .._wire import Channel, Inline, Stored, Value, connect, is_unix, local_part, parts, split_host_port
from ..exceptions import GetTimeoutError, NotInitializedError, ObjectLostError, ObjectStoreFullError, RuntimeShutdownError
from ._actors import ActorSubmitter, CallSpec
from ._head_link import HeadLink
from ._objects import Entry, ObjectTable, ThreadWaiter
from ._peers import Peers
from ._refs import ObjectRef
from ._streams import StreamTable
from ._submitter import TaskSpec, TaskSubmitter

_current: Runtime | None = None
_ID = operator.attrgetter("_id")
_OWNER = operator.attrgetter("_owner")
TICK = 0.05
IDLE_TICK = 1.0  # once IDLE_AFTER ticks in a row found nothing to do: idle actors cost ~nothing
# ... and no tick at all while nothing can become due without being queued first (see _tick)
IDLE_AFTER = 20
WARM_NICE = 10  # warming the store's memory must not slow the process down

log = logging.getLogger(__name__)
# The actor call a thread or async task of an actor runs (get_task_id(), is_canceled(), and
# the parent of what it submits); set by the worker's ActorRunner.
CURRENT_CALL: ContextVar[bytes | None] = ContextVar("actorlib_current_call", default=None)
LOST_RETRIES = 5  # times get() recomputes or refetches a value lost with its node


def current() -> Runtime:
    """The runtime of this process. Raises NotInitializedError if there is none."""
    if _current is None:
        raise NotInitializedError("actorlib is not initialized: call actorlib.init() first")
    return _current


def set_current(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


@dataclass
class Identity:
    """Who this process is in the cluster; filled in during bootstrap."""

    mode: str  # "driver" | "worker"
    core_id: bytes = field(default_factory=_ids.unique_id)
    session_dir: Path = Path()
    token: str = ""
    address: str = ""
    node_id: bytes = b""
    node_address: str = ""
    store_address: str = ""
    job_id: str = ""
    namespace: str = ""
    head_address: str = ""
    store_public: str = ""  # the node store's full address (with TCP), for readers on other nodes
    env: dict[str, str] = field(default_factory=dict)
    # An actor's process: which actor it hosts, and the placement group its tasks and actors
    # go into by default (set once, when the actor is created in it).
    actor_id: bytes = b""
    placement_group: bytes = b""
    capture_child_tasks: bool = False
    dashboard_url: str = ""  # a driver's embedded cluster with a dashboard: where it is

    @property
    def peer_name(self) -> str:
        return f"{self.mode}:{self.core_id.hex()}"


Bootstrap = Callable[["Runtime"], Awaitable[None]]


class Runtime:
    """One process's view of the cluster: objects, tasks, connections."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.objects = ObjectTable()
        self.objects.on_free = self._free_stored
        self.submitter = TaskSubmitter(self)
        self.actors = ActorSubmitter(self)
        self.streams = StreamTable(self)
        self.head = HeadLink(self)
        self.peers = Peers(self)
        # Both go through the loop's FIFO callback queue, so a pin asked for from any thread
        # (even from inside an actor's own event loop) reaches the owner before the release
        # that follows it, and a release before a later AddBorrowers for the same object.
        self.objects.on_release = lambda released: self._queue(self.peers.release_borrowed, released)
        self.objects.on_pin = lambda pinned: self._queue(self.peers.pin_borrowed, pinned)
        self.executor: Any = None  # set in worker processes
        self.task_events: Any = None  # a worker's TaskRecorder (what it ran, for the state API)
        self.owned_groups: set[bytes] = set()  # non-detached placement groups this process created
        self.uploaded_packages: dict[tuple[Any, ...], str] = {}  # runtime_env directories uploaded -> URI
        self.on_teardown: list[Callable[[], Awaitable[None]]] = []
        self.blocked_hook: Callable[[bool], None] | None = None
        # A worker's: the head declared its node dead (the reason); it must stop at once.
        self.on_fenced: Callable[[str], None] | None = None
        self._store: StoreClient | None = None
        self._remote: RemoteReader | None = None
        self._store_lock = threading.Lock()
        self._warming: threading.Thread | None = None
        self._quiet_ticks = IDLE_AFTER  # a process starts idle (a thousand actors booting at once)
        self._tick_sleep: trio.CancelScope | None = None
        self._deep_idle = False  # the tick sleeps until something is queued (wake_housekeeping)
        self.objects.on_queued = self.wake_housekeeping
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._nursery: trio.Nursery | None = None
        self._stop: trio.Event | None = None
        self._channels: list[Channel] = []
        self._submissions: deque[Any] = deque()
        self._drain_scheduled = False
        # A worker on the head's node connects to the head at its first task or actor call:
        # from then on it owns work other nodes' deaths concern (NodeDied).
        self.listen_at_first_submit = False
        self.closed = False

    # ---- lifecycle ---------------------------------------------------------

    def start(self, bootstrap: Bootstrap) -> None:
        """Run the loop on a daemon thread; return once ``bootstrap`` finished. Re-raises its error."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            try:
                trio.run(self._main, bootstrap, ready)
            except BaseException as exc:
                error = _single(exc)
                failure.append(error)
                if ready.is_set():  # it crashed after start-up: nobody else will say so
                    self._crashed(error)
            finally:
                self.closed = True
                ready.set()

        self._thread = threading.Thread(target=main, name="actorlib-runtime", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def _crashed(self, error: BaseException) -> None:
        import traceback

        sys.stderr.write("actorlib: the runtime thread crashed; every pending get() fails:\n")
        traceback.print_exception(error)
        self.closed = True
        message = f"the actorlib runtime crashed: {type(error).__name__}: {error}"
        self.objects.fail_pending(lambda: _shutdown_value(message))

    async def _main(self, bootstrap: Bootstrap, ready: threading.Event) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            self._token = trio.lowlevel.current_trio_token()
            self._stop = trio.Event()
            await bootstrap(self)
            nursery.start_soon(self._tick)
            ready.set()
            await self._stop.wait()
            self.closed = True
            self.objects.fail_pending(_shutdown_value)
            with trio.CancelScope(shield=True):
                for teardown in reversed(self.on_teardown):
                    await teardown()
                for channel in self._channels:
                    await channel.aclose()
            nursery.cancel_scope.cancel()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the loop (running teardown hooks) and join its thread. Idempotent."""
        if self._thread is None:
            return
        if self._thread.is_alive() and self._token is not None and self._stop is not None:
            try:
                self._token.run_sync_soon(self._stop.set)
            except trio.RunFinishedError:
                pass
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        if self._store is not None:
            self._store.close()
        if self._warming is not None:
            self._warming.join(timeout)  # close() told it to stop
        if self._remote is not None:
            self._remote.close()

    @property
    def nursery(self) -> trio.Nursery:
        assert self._nursery is not None
        return self._nursery

    async def connect(self, address: str, decode_type: Any) -> Channel:
        """An authenticated channel to ``address``, closed when the runtime stops.

        Raises ConnectionFailed (however the attempt failed); callers handle it."""
        ident = self.identity
        channel = await connect(self.nursery, address, ident.token, decode_type, name=ident.peer_name)
        self._channels = [c for c in self._channels if not c.closed]
        self._channels.append(channel)
        return channel

    def call(self, async_fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run ``async_fn(*args)`` in the loop and return its result (blocks the calling thread)."""
        if self.closed:
            raise RuntimeShutdownError("actorlib has been shut down")
        return trio.from_thread.run(async_fn, *args, trio_token=self._token)

    def soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` in the loop soon; from any thread, never blocks."""
        if self._token is None or self.closed:
            raise RuntimeShutdownError("actorlib has been shut down")
        self._token.run_sync_soon(fn, *args)

    async def _tick(self) -> None:
        """Housekeeping every TICK seconds; every IDLE_TICK once nothing happens for a while (a
        submission brings the quick pace back at once; reference drops wait up to IDLE_TICK).
        A process that holds nothing housekeeping looks at by time (no store memory, no
        actor handles, no task queue) does not tick at all until something is queued for it:
        a thousand idle actors each woken once a second cost a core ~10% for nothing."""
        while True:
            pace = TICK if self._quiet_ticks < IDLE_AFTER else IDLE_TICK
            if pace == IDLE_TICK and self._nothing_due():
                self._deep_idle = True  # before looking again: what is queued from now on wakes us
                if self._nothing_due():
                    pace = math.inf
                else:
                    self._deep_idle = False
            with trio.move_on_after(pace) as self._tick_sleep:
                await trio.sleep_forever()
            self._deep_idle = False
            busy = self._housekeeping()
            self._quiet_ticks = 0 if busy else self._quiet_ticks + 1

    def _nothing_due(self) -> bool:
        """Whether no housekeeping can fall due by time alone: nothing queued (each queue wakes
        the tick), no store client or remote buffers (flushed and trimmed by age), no actor
        handles (an unreachable actor is killed at a later tick) and no task queues."""
        return (
            self._store is None and self._remote is None and not self.actors.tracked()
            and self.streams.idle and self.objects.idle and self.actors.idle and self.submitter.idle
        )  # fmt: skip

    def wake_housekeeping(self) -> None:
        """(Any thread, ``__del__`` too.) Something was queued for housekeeping: if the tick
        sleeps for good (see _tick), have it run soon."""
        if self._deep_idle:
            self._deep_idle = False
            try:
                self.soon(self._wake_tick)
            except (RuntimeShutdownError, trio.RunFinishedError):
                pass  # the loop is gone: nothing to collect for

    def _wake_tick(self) -> None:
        if self._tick_sleep is not None:
            self._tick_sleep.deadline = min(self._tick_sleep.deadline, trio.current_time() + TICK)

    def _housekeeping(self) -> bool:
        """One tick's work; returns whether there was any, or anything still in flight."""
        busy = not (self.streams.idle and self.objects.idle and self.actors.idle and self.submitter.idle)
        self.streams.collect()  # before objects: it queues reference drops
        self.objects.collect()
        self.actors.collect()
        self.submitter.return_idle_leases()
        if self._store is not None:
            self._store.flush()  # extents whose views are gone may be reused
        if self._remote is not None:
            self._remote.trim()  # receive buffers of remote objects, unused for a while
        return busy

    def _quick_ticks(self) -> None:
        """(Runtime thread.) Something is happening: tick at the quick pace again."""
        self._quiet_ticks = 0
        if self._tick_sleep is not None:
            self._tick_sleep.deadline = min(self._tick_sleep.deadline, trio.current_time() + TICK)

    # ---- tasks -------------------------------------------------------------

    def running_task(self) -> bytes:
        """(The calling thread or async task.) The task or actor call running there, if any
        (b""): what it submits records it as its parent, so cancelling it recursively
        cancels them (cancel_children)."""
        executor = self.executor
        if executor is None:
            return b""
        running = executor.current
        if running is not None:
            return bytes(running.task_id)
        return (CURRENT_CALL.get() or b"") if executor.actor is not None else b""

    def cancel_children(self, parent: bytes) -> None:
        """(Runtime thread.) Cancel, recursively, the tasks and actor calls this process
        submitted while running task or call ``parent`` (Ray cancels both)."""
        self.submitter.cancel_children(parent)
        self.actors.cancel_children(parent)

    def submit(self, spec: TaskSpec | CallSpec) -> None:
        """Queue a task or actor call for submission; never blocks. (A task submitted by a
        task or actor call running here records it as its parent: cancelling that one
        recursively cancels this one; an actor call's parent is set where it is made.)"""
        if type(spec) is TaskSpec:
            spec.parent = self.running_task()
        self._submissions.append(spec)
        if self.listen_at_first_submit:
            self.listen_at_first_submit = False
            self.soon(lambda: self.nursery.start_soon(self.head.listen))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self.soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._quiet_ticks:
            self._quick_ticks()
        submissions = self._submissions
        while submissions:
            spec = submissions.popleft()
            if type(spec) is TaskSpec:
                self.submitter.submit(spec)
            else:
                self.actors.submit(spec)

    # ---- objects -------------------------------------------------------------

    def put(self, value: Any) -> ObjectRef:
        """Store ``value`` (a snapshot) and return a ref this process owns."""
        object_id = _ids.put_id()
        stored = self.snapshot(object_id, value, "the value passed to put()")
        self.objects.add(object_id, owned=True, owner=self.identity.address, value=stored)
        return ObjectRef(object_id, self.identity.address, self, counted=True)

    def snapshot(self, object_id: bytes, value: Any, what: str) -> Value:
        """``value`` serialized as the value of ``object_id`` (inline, or in this node's store);
        refs inside it are pinned for this process' lifetime, as for any put."""
        serialized = serialize(value, what=what)
        if serialized.refs:
            self.objects.mark_escaped([ref.binary() for ref in serialized.refs])
        if serialized.inline:
            return serialized.to_inline()
        return self.store_put(object_id, serialized, self.identity.core_id)

    def store_put(self, object_id: bytes, serialized: Any, owner: bytes) -> Stored:
        size = self.store.put(object_id, serialized, owner)
        ident = self.identity
        return Stored(object_id=object_id, node_id=ident.node_id, size=size, store=ident.store_public or ident.store_address)

    def read_stored(self, value: Stored) -> Any:
        """A stored object's value: zero-copy from this node's store, else copied from its node's."""
        ident = self.identity
        if value.node_id == ident.node_id or value.store == ident.store_address:
            try:
                return self.store.get(value.object_id)
            except ObjectStoreFullError:
                # Spilled, and readers pin everything the store could move out of the way:
                # a copy streamed from the spill file, as another node's reader would get.
                return self._remote_reader().read(ident.store_address, value.object_id)
        return self._remote_reader().read(value.store, value.object_id)

    def _remote_reader(self) -> RemoteReader:
        if self._remote is None:
            ident = self.identity
            land = self.store.land  # (takes the lock itself)
            with self._store_lock:
                if self._remote is None:
                    self._remote = RemoteReader(ident.token, ident.peer_name, land=land)
        return self._remote

    def warm_store(self) -> None:
        """Fault this node's prefaulted arena into this process, in a low-priority thread that
        stop() joins, so that its first puts copy at memory speed. Returns at once."""

        def warm() -> None:
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WARM_NICE)
            except OSError:
                pass
            try:
                self.store.warm()
            except (OSError, RuntimeError) as exc:  # the store went away, or we were stopped first
                log.debug("not warming the object store: %s", exc)

        self._warming = threading.Thread(target=warm, name="actorlib-store-warm", daemon=True)
        self._warming.start()

    async def rehome(self) -> bool:
        """A driver whose node is gone (it died, or it lived in the head's process and the head
        restarted) moves to a live node: the one on its own machine, else the head's. Its
        results kept in the old node's store are recomputed or lost, as for any dead node.
        False if the head lists no live node yet. Raises ConnectionError if the head is away."""
        live = [node for node in (await self.head.cluster()).nodes if node.alive]
        if not live:
            return False
        ident = self.identity
        ips = {split_host_port(part)[0] for part in parts(ident.address) if not is_unix(part)}
        node = next((n for n in live if n.ip in ips), None) or next((n for n in live if n.is_head), live[0])
        old_id, old_address = ident.node_id, ident.node_address
        ident.node_id, ident.node_address = node.node_id, node.address
        ident.store_address, ident.store_public = local_part(node.store) or node.store, node.store
        with self._store_lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()
        await self.peers.rehome()
        if old_address != node.address:
            self.peers.node_died(old_address)
        if node.node_id == old_id:  # the head's node, started again with the head: empty
            self.submitter.node_lost(old_id)
        else:
            self.submitter.node_died(old_id)
        log.warning("node %s is gone: this driver now uses node %s at %s", old_id.hex(), node.node_id.hex(), node.ip)
        return True

    @property
    def store(self) -> StoreClient:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    ident = self.identity
                    self._store = StoreClient(ident.store_address, ident.token, ident.peer_name)
        return self._store

    def entry_for(self, ref: ObjectRef) -> Entry:
        """The table entry behind ``ref``, fetching it from its owner if it is borrowed."""
        entry = self.objects.get(ref.binary())
        if entry is None:  # a ref from an earlier runtime in this process
            entry = self.objects.incref(ref.binary(), ref.owner_address)
        if entry.value is None and not entry.owned and not entry.fetching:
            entry.fetching = True
            self.soon(self.peers.fetch, ref.owner_address, ref.binary())
        return entry

    def value_of(self, ref: ObjectRef, entry: Entry) -> Any:
        """The Python value of a completed entry; raises the task's error for a failed one."""
        value = entry.value
        if type(value) is Inline:
            return deserialize(value.data, value.buffers)
        if type(value) is Stored:
            return self.read_stored(value)
        assert value is not None, f"{ref} is not ready"
        raise unbox(value)  # type: ignore[arg-type]

    def get(self, refs: Sequence[ObjectRef], timeout: float | None) -> list[Any]:
        """Block until every ref has a value; return the values in order."""
        deadline = None if timeout is None else time.monotonic() + timeout
        entries = [self.entry_for(ref) for ref in refs]
        waiter = self.objects.wait_many(entries)
        if waiter is not None and not self.block(waiter, timeout):
            self.objects.unwait([ref.binary() for ref in refs], waiter)
            missing = sum(entry.value is None for entry in entries)
            raise GetTimeoutError(f"get() timed out after {timeout}s: {missing} of {len(refs)} objects not ready")
        return [self._value_recovering(ref, entry, deadline) for ref, entry in zip(refs, entries)]

    def wait(
        self, refs: Sequence[ObjectRef], num_returns: int, timeout: float | None, *, fresh: bool = True
    ) -> tuple[list[Any], list[Any]]:
        """Ray's wait: the first ``num_returns`` ready refs (in input order) and the rest.

        Refs are checked in order, in C loops over the table's set of ready ids, until
        ``num_returns`` are found; a wait that must block sleeps on one watcher, not one
        waiter per ref, so ``while pending: ready, pending = wait(pending)`` costs little
        per call and leaves nothing behind. ``fresh=False``: ``refs`` is (part of) a list
        an earlier wait() returned, whose borrowed objects are being fetched already.
        """
        if fresh:
            self._start_fetches(refs)
        seen = self.objects.completions
        found = self._ready_indexes(refs, num_returns)
        if len(found) < num_returns and timeout != 0:
            found = self._wait_ready(refs, num_returns, timeout, found, seen)
        return _split(refs, found)

    def _ready_indexes(self, refs: Sequence[ObjectRef], want: int) -> list[int]:
        """Indexes of the first ``want`` refs whose value is known; looks no further.
        (C loops over the table's set of ready ids: no Python code runs per ref.)"""
        if want <= 0:
            return []
        hits = itertools.compress(itertools.count(), map(self.objects.ready.__contains__, map(_ID, refs)))
        return list(itertools.islice(hits, want))

    def _start_fetches(self, refs: Sequence[ObjectRef]) -> None:
        """Before blocking on ``refs``: ask the owners of the borrowed ones for them (and know
        the ones from an earlier runtime). Refs this process owns need nothing: checked first,
        in C loops, so the common case costs no Python code per ref."""
        own = self.identity.address
        if all(map(own.__eq__, map(_OWNER, refs))) and all(map(self.objects.known.__contains__, map(_ID, refs))):
            return
        for ref in refs:
            self.entry_for(ref)

    def _wait_ready(
        self, refs: Sequence[ObjectRef], want: int, timeout: float | None, found: list[int], seen: int
    ) -> list[int]:
        """Block until ``want`` refs are ready (or ``timeout``). ``found``: those ready when
        ``seen`` values had been set; looked for again only once more are."""
        deadline = None if timeout is None else time.monotonic() + timeout
        watcher = self.objects.watch()  # from here, no completion is missed
        if self.blocked_hook is not None:
            self.blocked_hook(True)
        try:
            woken = False
            while True:
                if self.objects.completions != seen:  # something completed: look again
                    seen, before = self.objects.completions, len(found)
                    found = self._ready_indexes(refs, want)
                    if woken and len(found) == before and watcher.ids is None:
                        watcher.ids = frozenset(map(_ID, refs))  # woken for others' objects: only ours now
                remaining = None if deadline is None else deadline - time.monotonic()
                if len(found) >= want or (remaining is not None and remaining <= 0):
                    return found
                woken = watcher.wait(remaining)
        finally:
            self.objects.unwatch(watcher)
            if self.blocked_hook is not None:
                self.blocked_hook(False)

    def block(self, waiter: ThreadWaiter, timeout: float | None) -> bool:
        """(A user thread.) Wait for ``waiter`` (False: timed out). A worker tells its node
        it is blocked meanwhile, so the node lends its CPUs (nested work cannot deadlock)."""
        if self.blocked_hook is not None:
            self.blocked_hook(True)
        try:
            return waiter.wait(timeout)
        finally:
            if self.blocked_hook is not None:
                self.blocked_hook(False)

    def borrow(self, object_ids: list[bytes]) -> None:
        """(Not the runtime thread.) Be counted by their owners as a borrower of these objects,
        held here; returns once every owner has answered (or cannot be reached)."""
        wanted = self.objects.borrowing(object_ids)
        if wanted and not self.closed:
            self.call(self.peers.add_borrowers, wanted)

    def _queue(self, fn: Callable[..., Any], *args: Any) -> None:
        """``soon``, but quietly nothing once the runtime is gone."""
        try:
            self.soon(fn, *args)
        except (RuntimeShutdownError, trio.RunFinishedError):
            pass

    def _free_stored(self, freed: list[tuple[bytes, Stored]]) -> None:
        self.submitter.forget([object_id for object_id, _ in freed])
        self.peers.free_stored([stored for _, stored in freed])

    # ---- objects lost with their node ------------------------------------------------------

    def recover_lost(self, object_id: bytes, lost: Stored) -> None:
        """(Runtime thread.) ``lost`` cannot be read from its node: make the entry pending again
        (recomputed by its task here, or fetched again from its owner) or an ObjectLostError."""
        entry = self.objects.get(object_id)
        if entry is None or entry.value is not lost:
            return  # already recomputed, or refetched
        if entry.owned:
            if not self.submitter.reconstruct(object_id, lost):
                error = ObjectLostError(
                    f"object {object_id.hex()} cannot be read from the store of node {lost.node_id.hex()} "
                    "and cannot be recomputed (put() objects, actor results and tasks out of retries are not)"
                )
                self.objects.replace(object_id, lost, box_system(error))
            return
        if self.objects.replace(object_id, lost, None):  # a borrower: ask the owner again
            entry.fetching = True
            self.peers.fetch(entry.owner, object_id, lost.node_id)

    def _value_recovering(self, ref: ObjectRef, entry: Entry, deadline: float | None) -> Any:
        """``value_of``, recomputing (or refetching) a stored value whose node is gone."""
        for _ in range(LOST_RETRIES):
            value = entry.value
            try:
                return self.value_of(ref, entry)
            except ObjectLostError:
                if type(value) is not Stored:
                    raise
            self.call(self._recover_async, ref.binary(), value)
            waiter = self.objects.wait_many([entry])
            timeout = None if deadline is None else deadline - time.monotonic()
            if waiter is not None and not self.block(waiter, timeout):
                self.objects.unwait([ref.binary()], waiter)
                raise GetTimeoutError(f"get() timed out after recomputing lost object {ref.hex()}")
        return self.value_of(ref, entry)

    async def _recover_async(self, object_id: bytes, lost: Stored) -> None:
        self.recover_lost(object_id, lost)


def _shutdown_value(message: str = "actorlib was shut down before this object was ready") -> Value:
    return box_system(RuntimeShutdownError(message))


def _split(refs: Sequence[Any], found: list[int]) -> tuple[list[Any], list[Any]]:
    """(refs at ``found``, every other ref), both in input order; slices, not a loop per ref."""
    ready = [refs[index] for index in found]
    rest: list[Any] = []
    start = 0
    for index in found:
        rest += refs[start:index]
        start = index + 1
    rest += refs[start:]
    return ready, rest


def _single(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc
