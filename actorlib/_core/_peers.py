"""Connections of one runtime: to its node, to workers and owners it calls, and its own core server."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .._serial import box_system
from .._wire import (
    ActorSpecReply,
    AddBorrowers,
    BorrowersAdded,
    CallActor,
    CancelTask,
    Channel,
    ConnectionFailed,
    CoreMessage,
    GetObject,
    LeaseGranted,
    LeaseRefused,
    LogBatch,
    ObjectRefInfo,
    ObjectsQuery,
    ObjectsReply,
    PendingTasksQuery,
    PendingTasksReply,
    NodeInfoReply,
    NodeMessage,
    ObjectReply,
    Pending,
    PinObjects,
    ProtocolError,
    RemoveBorrowers,
    Stored,
    StoreFree,
    StoreMessage,
    StreamEnd,
    StreamItem,
    SubscribeLogs,
    TaskDone,
    WorkerExitReply,
    serve,
)
from ..exceptions import ObjectFreedError, OwnerDiedError
from ._objects import CallbackWaiter

if TYPE_CHECKING:
    from ._runtime import Runtime

log = logging.getLogger("actorlib.core")

_REPLIES = (LeaseGranted, LeaseRefused, WorkerExitReply, NodeInfoReply, ActorSpecReply)
BORROW_TIMEOUT = 30.0  # seconds a task waits for the owners of refs nested in its arguments


class NodeLink:
    """A channel to a node service, with request/reply."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.pending = Pending()

    async def request(self, make: Callable[[int], Any]) -> Any:
        req = self.pending.new()
        self.send(make(req))
        return await self.pending.wait(req)

    def send(self, message: Any) -> None:
        self.channel.send_nowait(message)


class Peers:
    """Every channel this runtime holds, and what arrives on them."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.node: Channel | None = None
        self.local: NodeLink | None = None
        self._nodes: dict[str, NodeLink] = {}
        self.on_logs: Callable[[LogBatch], None] = lambda batch: None
        self.logs_job: str | None = None  # the job whose workers' output this driver prints
        self._channels: dict[str, Channel] = {}
        self._connecting: dict[str, trio.Event] = {}
        self._pending: dict[Channel, Pending] = {}
        self._store: Channel | None = None
        self._frees: list[bytes] = []
        self._stores: dict[str, Channel] = {}  # other nodes' stores, by address
        self._remote_frees: dict[str, list[bytes]] = {}
        self._remote_lock = trio.Lock()

    # ---- the node ------------------------------------------------------------

    async def connect_node(self) -> None:
        self.local = await self.node_link(self.rt.identity.node_address)
        self.node = self.local.channel

    async def rehome(self) -> None:
        """Connect to this process's new node (``identity.node_address``), and free objects in
        its store from now on; what the old link waited for fails with it."""
        self._frees = []  # for the old store, which is gone
        if self._store is not None:
            self.rt.nursery.start_soon(self._store.aclose)
            self._store = None
        await self.connect_node()
        if self.logs_job is not None:
            self.subscribe_logs(self.logs_job)

    def subscribe_logs(self, job_id: str) -> None:
        """Have the node relay the output of this job's workers (``on_logs``)."""
        self.logs_job = job_id
        self.node_send(SubscribeLogs(job_id=job_id))

    async def node_link(self, address: str) -> NodeLink:
        """A link to the node service at ``address`` (connected once). Raises ConnectionFailed."""
        link = self._nodes.get(address)
        if link is None or link.channel.closed:
            link = self._nodes[address] = NodeLink(await self.rt.connect(address, NodeMessage))
            self.rt.nursery.start_soon(self._read_node, link)
        return link

    async def _read_node(self, link: NodeLink) -> None:
        try:
            async for message in link.channel:
                if isinstance(message, _REPLIES):
                    link.pending.resolve(message.req, message)
                elif isinstance(message, LogBatch):
                    self.on_logs(message)
                elif isinstance(message, PendingTasksQuery):  # only our own node lists them: no duplicates
                    link.channel.send_nowait(self._pending_tasks(message) if link is self.local else PendingTasksReply(req=message.req, tasks=[]))
                elif isinstance(message, ObjectsQuery):  # the same
                    link.channel.send_nowait(self._objects(message, link is self.local))
        except ProtocolError as exc:
            log.error("closing the node connection: %s", exc)
        finally:
            link.pending.fail_all(ConnectionError("lost the connection to the node"))
            await link.channel.aclose()

    def _pending_tasks(self, query: PendingTasksQuery) -> PendingTasksReply:
        """What this process owns that has not started: its tasks, then its actor calls."""
        tasks, total = self.rt.submitter.pending(query.limit)
        calls, calls_total = self.rt.actors.pending(max(0, query.limit - len(tasks)))
        return PendingTasksReply(req=query.req, tasks=tasks + calls, total=total + calls_total)

    def _objects(self, query: ObjectsQuery, mine: bool) -> ObjectsReply:
        """The objects this process holds references to (for ``actorlib memory``)."""
        rt = self.rt
        ident = rt.identity
        objects: list[ObjectRefInfo] = []
        total = 0
        if mine:
            counts: dict[bytes, int] = {}
            kept: dict[bytes, int] = {}
            lineage = rt.submitter.held_refs(counts, kept)
            rt.actors.held_refs(counts)
            objects, total = rt.objects.report(counts, kept, lineage, ident.address, query.limit)
        return ObjectsReply(req=query.req, pid=os.getpid(), peer=ident.peer_name, actor_id=ident.actor_id, objects=objects, total=total)

    def node_died(self, address: str) -> None:
        """The head says the node at ``address`` is dead: close our link to it, so requests
        waiting there (a lease request queued on a frozen node) fail now and go elsewhere,
        even if the network never reports the connection broken (a node back from a freeze
        must not hand out work: decision 0016)."""
        link = self._nodes.get(address) if address else None
        if link is not None and link is not self.local:
            del self._nodes[address]  # not handed out again while it closes
            link.pending.fail_all(ConnectionError(f"the node at {address} is dead"))
            self.rt.nursery.start_soon(link.channel.aclose)

    async def node_request(self, make: Callable[[int], Any]) -> Any:
        """Send ``make(req)`` to the local node and return its reply."""
        assert self.local is not None
        return await self.local.request(make)

    def node_send(self, message: Any) -> None:
        assert self.local is not None
        self.local.send(message)

    # ---- our own server --------------------------------------------------------

    async def serve(self, address: str, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        await serve(address, self.rt.identity.token, CoreMessage, self._read_core, task_status=task_status)

    # ---- outgoing core channels ------------------------------------------------

    async def channel_to(self, address: str) -> Channel:
        """A channel to the core server at ``address`` (shared, connected once). Raises ConnectionFailed."""
        while address not in self._channels:
            if address in self._connecting:
                await self._connecting[address].wait()
                continue
            self._connecting[address] = done = trio.Event()
            try:
                channel = await self.rt.connect(address, CoreMessage)
                self._channels[address] = channel
                self.rt.nursery.start_soon(self._read_outgoing, address, channel)
            finally:
                del self._connecting[address]
                done.set()
        return self._channels[address]

    async def _read_outgoing(self, address: str, channel: Channel) -> None:
        try:
            await self._read_core(channel)
        except ProtocolError as exc:
            log.error("closing the connection to %s: %s", address, exc)
        finally:
            if self._channels.get(address) is channel:
                del self._channels[address]
            await channel.aclose()

    async def _read_core(self, channel: Channel) -> None:
        dispatch = self._dispatch
        receive = channel.receive
        try:
            while True:
                try:
                    message = await receive()
                except EOFError:
                    break
                dispatch(channel, message)
        finally:
            channel._mark_closed(None)
            self.rt.objects.remove_borrowers(channel)  # a borrower that is gone holds nothing
            self.rt.submitter.on_channel_lost(channel)
            self.rt.actors.on_channel_lost(channel)
            pending = self._pending.pop(channel, None)
            if pending is not None:
                pending.fail_all(ConnectionError(f"lost the connection to {channel.peer}"))

    def _dispatch(self, channel: Channel, message: Any) -> None:
        kind = type(message)
        if kind is TaskDone:
            if not self.rt.submitter.on_done(message) and not self.rt.actors.on_done(message):
                self.rt.submitter.free_orphans(message.returns)
        elif kind is ObjectReply:
            self._pending_for(channel).resolve(message.req, message)
        elif kind is CancelTask:
            self._executor().cancel(message.task_id, message.num_returns, channel, message.recursive)
        elif kind is GetObject:
            self._serve_object(channel, message)
        elif kind is CallActor:
            self._executor().call(message, channel)
        elif kind is StreamItem:
            self.rt.streams.on_message(message)
        elif kind is StreamEnd:
            self.rt.streams.on_message(message)
            self.rt.submitter.on_stream_end(message) or self.rt.actors.on_stream_end(message)
        elif kind is AddBorrowers:
            self.rt.objects.add_borrowers(channel, message.object_ids)
            if not channel.closed:
                channel.send_nowait(BorrowersAdded(req=message.req))
        elif kind is BorrowersAdded:
            self._pending_for(channel).resolve(message.req, message)
        elif kind is RemoveBorrowers:
            self.rt.objects.remove_borrowers(channel, message.object_ids)
        elif kind is PinObjects:
            self.rt.objects.mark_escaped(message.object_ids)


    def _executor(self) -> Any:
        if self.rt.executor is None:
            raise ConnectionError("this process runs no tasks")
        return self.rt.executor

    def _pending_for(self, channel: Channel) -> Pending:
        pending = self._pending.get(channel)
        if pending is None:
            pending = self._pending[channel] = Pending()
        return pending

    # ---- objects between owners and borrowers ---------------------------------

    def fetch(self, owner: str, object_id: bytes, lost: bytes = b"") -> None:
        """Ask ``owner`` for an object this process borrows; complete it when it answers.

        ``lost``: the node whose store no longer has it (the owner recomputes it if it can)."""
        self.rt.nursery.start_soon(self._fetch, owner, object_id, lost)

    async def _fetch(self, owner: str, object_id: bytes, lost: bytes = b"") -> None:
        try:
            channel = await self.channel_to(owner)
            pending = self._pending_for(channel)
            req = pending.new()
            channel.send_nowait(GetObject(req=req, object_id=object_id, lost=lost))
            reply = await pending.wait(req)
            value = reply.value
        except (ConnectionError, trio.ClosedResourceError) as exc:  # ConnectionFailed, or it went away
            error = OwnerDiedError(f"the owner of object {object_id.hex()} ({owner}) is unreachable: {exc}")
            value = box_system(error)
        self.rt.objects.complete(object_id, value)

    def _serve_object(self, channel: Channel, request: GetObject) -> None:
        entry = self.rt.objects.get(request.object_id)

        def reply() -> None:
            assert entry is not None and entry.value is not None
            if not channel.closed:
                channel.send_nowait(ObjectReply(req=request.req, value=entry.value))

        if entry is None or not entry.owned:
            error = ObjectFreedError(f"object {request.object_id.hex()} is not held by its owner any more")
            if not channel.closed:
                channel.send_nowait(ObjectReply(req=request.req, value=box_system(error)))
            return
        value = entry.value
        if request.lost and type(value) is Stored and value.node_id == request.lost:
            self.rt.recover_lost(request.object_id, value)  # recompute it, or say it is lost
        if not self.rt.objects.wait_on(entry, CallbackWaiter(reply)):
            reply()

    async def add_borrowers(self, wanted: list[tuple[str, bytes]]) -> None:
        """Tell each owner that this process borrows its objects in ``wanted`` ((owner, id)
        pairs); return once every owner has recorded it, or cannot be reached."""
        by_owner = _by_owner(wanted)
        async with trio.open_nursery() as nursery:
            for owner, object_ids in by_owner.items():
                nursery.start_soon(self._add_borrowers, owner, object_ids)

    async def _add_borrowers(self, owner: str, object_ids: list[bytes]) -> None:
        try:
            with trio.move_on_after(BORROW_TIMEOUT) as waited:  # an owner that froze must not hang the task
                channel = await self.channel_to(owner)
                pending = self._pending_for(channel)
                req = pending.new()
                channel.send_nowait(AddBorrowers(req=req, object_ids=object_ids))
                await pending.wait(req)
            if waited.cancelled_caught:
                log.warning("%s did not answer AddBorrowers within %s s", owner, BORROW_TIMEOUT)
        except (ConnectionError, trio.ClosedResourceError) as exc:  # ConnectionFailed, or it went away
            log.debug("cannot borrow %d objects of %s (reading them will say why): %s", len(object_ids), owner, exc)

    def release_borrowed(self, released: list[tuple[str, bytes]]) -> None:
        """(Runtime thread.) This process holds no more refs to these borrowed objects.

        Sent at once, on the channel that registered them, so that a later AddBorrowers for
        the same object cannot overtake it. No channel: the owner already forgot us."""
        self._send_to_owners(released, RemoveBorrowers)

    def pin_borrowed(self, pinned: list[tuple[str, bytes]]) -> None:
        """(Runtime thread.) Refs to these borrowed objects went where nobody counts them."""
        self._send_to_owners(pinned, PinObjects)

    def _send_to_owners(self, pairs: list[tuple[str, bytes]], kind: Any) -> None:
        for owner, object_ids in _by_owner(pairs).items():
            channel = self._channels.get(owner)
            if channel is not None and not channel.closed:
                try:
                    channel.send_nowait(kind(object_ids=object_ids))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass

    def free_stored(self, stored: list[Stored]) -> None:
        """Tell the stores holding these objects that they are unreferenced (asynchronously):
        this node's store, and those of other nodes, where results of tasks that ran there live."""
        ident = self.rt.identity
        for value in stored:
            if value.node_id == ident.node_id or value.store == ident.store_address:
                self._frees.append(value.object_id)
            else:
                self._remote_frees.setdefault(value.store, []).append(value.object_id)
        if self.rt.closed:
            return
        if self._frees:
            self.rt.nursery.start_soon(self._flush_frees)
        if self._remote_frees:
            self.rt.nursery.start_soon(self._flush_remote_frees)

    async def _flush_frees(self) -> None:
        if self._store is None:
            try:
                self._store = await self.rt.connect(self.rt.identity.store_address, StoreMessage)
            except ConnectionFailed as exc:
                log.debug("cannot free objects: store unreachable: %s", exc)
                return
        frees, self._frees = self._frees, []
        if frees and not self._store.closed:
            self._store.send_nowait(StoreFree(object_ids=frees))

    async def _flush_remote_frees(self) -> None:
        async with self._remote_lock:  # one connection per store
            frees, self._remote_frees = self._remote_frees, {}
            for address, object_ids in frees.items():
                channel = self._stores.get(address)
                try:
                    if channel is None or channel.closed:
                        channel = self._stores[address] = await self.rt.connect(address, StoreMessage)
                    channel.send_nowait(StoreFree(object_ids=object_ids))
                except (ConnectionFailed, trio.ClosedResourceError) as exc:
                    # Its node is gone, and the objects with it.
                    log.debug("cannot free %d objects in the store at %s: %s", len(object_ids), address, exc)


def _by_owner(pairs: list[tuple[str, bytes]]) -> dict[str, list[bytes]]:
    grouped: dict[str, list[bytes]] = {}
    for owner, object_id in pairs:
        grouped.setdefault(owner, []).append(object_id)
    return grouped
