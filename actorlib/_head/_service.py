"""The head service: registers drivers (one job each) and nodes, tracks their liveness, and
answers questions about the cluster."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from .. import _ids
from .._wire import (
    ActorCreated,
    ActorState,
    ClusterView,
    Heartbeat,
    NodeDied,
    NodeMember,
    NodeRegistered,
    NodeView,
    RegisterNode,
    ActorList,
    ActorReply,
    Channel,
    ClaimOwnership,
    ClusterInfoReply,
    ClusterInfoRequest,
    CreateActor,
    Done,
    DriverRegistered,
    GetNamedActor,
    HeadMessage,
    KillActor,
    ListActors,
    RegisterDriver,
    WaitActor,
    BundlesReply,
    NodeQueryReply,
    CreatePlacementGroup,
    ListPlacementGroups,
    PlacementGroupList,
    PlacementGroupReply,
    RemovePlacementGroup,
    WaitPlacementGroup,
    StateQuery,
    StateReply,
    RequestResources,
    serve,
)
from .._state import QueryError
from ._actors import ActorDirectory
from ._drivers import DriverTable
from ._groups import PlacementGroups
from ._state_service import StateService
from ._nodes import DEFAULT_HEARTBEAT, DEFAULT_NODE_TIMEOUT, RemoteNode
from ._registry import Registry
from ._state import MemoryState, StateStore

log = logging.getLogger("actorlib.head")
Handler = Callable[[Channel, Any], Awaitable[None]]
FENCE_WAIT = 1.0  # seconds a dead node's own processes have to stop before the others are told


class HeadService:
    """Serves the head socket: drivers, nodes, and the actor directory."""

    def __init__(
        self,
        address: str,
        token: str,
        registry: Registry,
        *,
        heartbeat: float = DEFAULT_HEARTBEAT,
        node_timeout: float = DEFAULT_NODE_TIMEOUT,
        state: StateStore | None = None,
        recovery_grace: float = 0.0,
        restarted: bool = False,
    ) -> None:
        self.address = address
        self.token = token
        self.registry = registry
        self.state = state or MemoryState()
        self.groups = PlacementGroups(registry.nodes, self.state)
        self.actors = ActorDirectory(registry.nodes, self.state, self.groups)
        self.heartbeat = heartbeat
        self.node_timeout = node_timeout
        self.recovery_grace = recovery_grace
        self.restarted = restarted  # a previous head of this cluster ran: its nodes will come back
        self._clients: set[Channel] = set()
        self._members: dict[bytes, set[Channel]] = {}  # node id -> its workers' and actors' channels (NodeMember)
        self._member_of: dict[Channel, bytes] = {}
        self._fencing: set[bytes] = set()  # nodes found dead whose own processes are being stopped
        # Head services beside the core (packages, jobs) answer their own messages: type -> handler.
        self.handlers: dict[type, Handler] = {}
        self.on_driver: Callable[[RegisterDriver, str, NodeView], None] | None = None
        self.drivers = DriverTable()
        self.inspect = StateService(
            registry.nodes, lambda: registry.views(dead=True), self.actors.views, self.groups.views,
            self.drivers.states,
        )  # fmt: skip
        self.requested: list[dict[str, float]] = []  # request_resources(): capacity to keep ready
        self.autoscaler_view: Any = lambda: None  # set by the head's autoscaler, if it has one
        self.job_demands: Callable[[], list[dict[str, float]]] = list  # jobs waiting for room (set by HeadServices)
        # ... and what node processes tell them (job entrypoints): joins, messages by type, deaths.
        self.on_node_joined: list[Callable[[RemoteNode, RegisterNode], None]] = []
        self.node_handlers: dict[type, Callable[[RemoteNode, Any], None]] = {}
        self.on_node_died: list[Callable[[bytes, str], None]] = []

    async def run(self, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.restarted:
                self.registry.settling_until = time.monotonic() + self.recovery_grace
            self.actors.recover()
            self.groups.recover()
            nursery.start_soon(self.groups.run)
            self.address = await nursery.start(serve, self.address, self.token, HeadMessage, self._serve_channel)
            nursery.start_soon(self._watch_nodes)
            nursery.start_soon(self._place_unclaimed)
            task_status.started(self.address)

    async def _place_unclaimed(self) -> None:
        # Nodes re-register within their grace period; what none claimed by then is re-created.
        await trio.sleep(self.recovery_grace)
        self.groups.forget_missing_nodes()
        self.actors.place_unclaimed()
        # Owners reconnect within a couple of seconds of the head coming back (they retry
        # every 2 s at most); what none claimed by now belonged to an owner that exited.
        self.actors.kill_unclaimed()
        self.groups.remove_unclaimed()

    async def _serve_channel(self, channel: Channel) -> None:
        first = await channel.receive()
        if isinstance(first, RegisterNode):
            await self._serve_node(channel, first)
            return
        self._clients.add(channel)
        try:
            message = first
            while True:
                try:
                    self._dispatch(channel, message)
                except Exception:  # a bug answering one request must not cut the client off
                    log.exception("head: failed to handle %s from %s", type(message).__name__, channel.peer)
                try:
                    message = await channel.receive()
                except EOFError:
                    return
        finally:
            self._clients.discard(channel)
            self._not_member(channel)
            self.drivers.ended(channel)
            self.actors.owner_gone(channel)
            self.groups.owner_gone(channel)

    def _dispatch(self, channel: Channel, message: object) -> None:
        if isinstance(message, (WaitActor, CreateActor, GetNamedActor, KillActor, ListActors)):
            self._actor_request(channel, message)
        elif isinstance(message, (CreatePlacementGroup, RemovePlacementGroup, WaitPlacementGroup, ListPlacementGroups)):
            self._group_request(channel, message)
        elif isinstance(message, NodeMember):
            self._not_member(channel)
            self._member_of[channel] = message.node_id
            self._members.setdefault(message.node_id, set()).add(channel)
        elif isinstance(message, ClaimOwnership):
            self.actors.claim(channel, message.actor_ids)
            self.groups.claim(channel, message.pg_ids)
        elif isinstance(message, RegisterDriver):
            node = self._node_for(channel, message.node_id)
            if node is None:
                log.warning("driver %s registered while no node is up", channel.peer)
                return
            job_id = f"{self.state.next_job():08x}"
            self.drivers.started(
                channel, job_id, pid=message.pid, ip=_peer_ip(channel) or "", namespace=message.namespace,
                entrypoint=message.entrypoint,
            )  # fmt: skip
            if self.on_driver is not None:
                self.on_driver(message, job_id, node)
            channel.send_nowait(DriverRegistered(req=message.req, job_id=job_id, node=node))
        elif isinstance(message, StateQuery):
            self._nursery.start_soon(self._answer_state, channel, message)
        elif isinstance(message, ClusterInfoRequest):
            views = self.registry.views(dead=True)
            channel.send_nowait(
                ClusterInfoReply(req=message.req, nodes=views, groups=self.groups.views(), autoscaler=self.autoscaler_view())
            )
        elif isinstance(message, RequestResources):
            self.requested = [dict(bundle) for bundle in message.bundles]
            channel.send_nowait(Done(req=message.req))
        elif type(message) in self.handlers:
            self._nursery.start_soon(self.handlers[type(message)], channel, message)

    def _not_member(self, channel: Channel) -> None:
        node_id = self._member_of.pop(channel, None)
        members = self._members.get(node_id, set()) if node_id is not None else set()
        members.discard(channel)
        if node_id is not None and not members:
            self._members.pop(node_id, None)

    def _node_for(self, channel: Channel, node_id: bytes = b"") -> NodeView | None:
        """The node a driver should use: the one it runs on if it says so (a job's entrypoint), one
        on its machine (by IP), else the head's."""
        views = self.registry.views()
        named = [view for view in views if node_id and view.node_id == node_id]
        if named:
            return named[0]
        ip = _peer_ip(channel)
        if ip is not None:
            for view in views:
                if view.ip == ip:
                    return view
        return self.registry.head_node()

    # ---- nodes in their own processes ----------------------------------------------------

    async def _serve_node(self, channel: Channel, hello: RegisterNode) -> None:
        if self.registry.declared_dead(hello.node.node_id):
            # Its actors were placed again and its tasks retried elsewhere: letting it back in
            # would run them twice. It stops itself (fenced); started again, it joins as a new node.
            log.warning("node %s came back after it was declared dead: refused", _ids.short(hello.node.node_id))
            error = "this node was declared dead (it missed its heartbeats or lost its connection); it must stop"
            channel.send_nowait(NodeRegistered(req=hello.req, period=self.heartbeat, error=error, fenced=True))
            await channel.aclose()
            return
        node = RemoteNode(hello.node, channel)
        self.registry.add(node)
        self.groups.node_joined(node, hello.groups)
        self.actors.node_joined(node, hello.actors)
        for joined in self.on_node_joined:
            joined(node, hello)
        channel.send_nowait(NodeRegistered(req=hello.req, period=self.heartbeat))
        log.info("node %s joined from %s", _ids.short(node.node_id), hello.node.ip)
        try:
            while True:
                try:
                    message = await channel.receive()
                except EOFError:
                    break
                if isinstance(message, Heartbeat):
                    node.beat(message.available, message.pending, message.total, message.demands)
                    node.reported(message.busy, message.draining)
                    channel.send_nowait(
                        ClusterView(
                            nodes=self.registry.views(), node_types=self.registry.scalable, settling=self.registry.settling()
                        )
                    )
                elif isinstance(message, ActorState):
                    self.actors.update(
                        message.actor_id, message.state, address=message.address, pid=message.pid,
                        cause=message.cause, node_id=node.node_id, core=message.core,
                    )  # fmt: skip
                elif isinstance(message, (BundlesReply, NodeQueryReply)):
                    node.requests.resolve(message.req, message)
                elif type(message) in self.node_handlers:
                    self.node_handlers[type(message)](node, message)
        finally:
            node.requests.fail_all(ConnectionError("the node's connection closed"))
            self._node_died(node, "its connection to the head closed")

    async def _watch_nodes(self) -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(self.heartbeat)
            now = trio.current_time()
            stalled = now - last - self.heartbeat
            last = now
            if stalled > self.heartbeat:
                # This process did not run for a while (stopped, swapped out): the heartbeats
                # that arrived meanwhile wait unread in its sockets. Silence it caused itself
                # does not count against the nodes.
                log.warning("the head did not run for %.1fs: nodes get that time back", stalled)
                for node in self.registry.remote_nodes():
                    node.last_beat = max(node.last_beat, now - self.heartbeat)
                continue
            for node in self.registry.remote_nodes():
                if now - node.last_beat > self.node_timeout:
                    self._node_died(node, f"no heartbeat for {self.node_timeout:g}s")
                    await node.channel.aclose()

    def _node_died(self, node: RemoteNode, reason: str) -> None:
        """A node is dead: its own workers and actors hear it first, and the head waits (up to
        FENCE_WAIT) for them to stop before anyone else is told and its work is placed again,
        so no process of a node serves a call or finishes a task once the cluster counts the
        node dead (decision 0016). They stop within milliseconds; a process that cannot hear
        (cut off from the head, or stopped itself) only costs that wait."""
        if node.node_id in self._fencing or not self.registry.live(node):
            return
        members = [m for m in self._members.get(node.node_id, ()) if not m.closed]
        if not members:
            self._declare_dead(node, reason)
            return
        self._fencing.add(node.node_id)
        died = NodeDied(node_id=node.node_id, reason=reason, address=node.view().address)
        for member in members:
            member.send_nowait(died)
        self._nursery.start_soon(self._fence, node, reason, members)

    async def _fence(self, node: RemoteNode, reason: str, members: list[Channel]) -> None:
        try:
            with trio.move_on_after(FENCE_WAIT):
                for member in members:
                    await member.closed_event.wait()
            if left := sum(1 for m in members if not m.closed):
                short = _ids.short(node.node_id)
                log.warning("node %s: %d of its processes did not stop within %gs of being told it is dead", short, left, FENCE_WAIT)
        finally:
            self._fencing.discard(node.node_id)
            self._declare_dead(node, reason)

    def _declare_dead(self, node: RemoteNode, reason: str) -> None:
        if not self.registry.mark_dead(node, reason):
            return
        log.warning("node %s is dead: %s", _ids.short(node.node_id), reason)
        self.groups.node_died(node.node_id)
        self.actors.node_died(node, reason)
        for died in self.on_node_died:
            died(node.node_id, reason)
        died = NodeDied(node_id=node.node_id, reason=reason, address=node.view().address)
        for client in list(self._clients):
            if not client.closed:
                client.send_nowait(died)

    # ---- the actor directory ------------------------------------------------------------------

    def _actor_request(self, channel: Channel, message: object) -> None:
        actors = self.actors
        if isinstance(message, CreateActor):
            view, error = actors.create(message.spec, channel, message.get_if_exists)
            channel.send_nowait(ActorCreated(req=message.req, view=view, error=error))
        elif isinstance(message, WaitActor):
            self._nursery.start_soon(self._answer_wait, channel, message)
        elif isinstance(message, GetNamedActor):
            channel.send_nowait(ActorReply(req=message.req, view=actors.named(message.name, message.namespace)))
        elif isinstance(message, KillActor):
            error = actors.kill(message.actor_id, message.no_restart, message.reason or "killed by actorlib.kill()")
            channel.send_nowait(Done(req=message.req, error=error))
        elif isinstance(message, ListActors):
            channel.send_nowait(ActorList(req=message.req, actors=actors.views()))

    # ---- placement groups ----------------------------------------------------------------------

    def _group_request(self, channel: Channel, message: object) -> None:
        groups = self.groups
        if isinstance(message, CreatePlacementGroup):
            error = groups.create(message.spec, channel)
            channel.send_nowait(PlacementGroupReply(req=message.req, view=groups.get(message.spec.pg_id), error=error))
        elif isinstance(message, RemovePlacementGroup):
            channel.send_nowait(Done(req=message.req, error=groups.remove(message.pg_id)))
        elif isinstance(message, ListPlacementGroups):
            channel.send_nowait(PlacementGroupList(req=message.req, groups=groups.views()))
        elif isinstance(message, WaitPlacementGroup):
            view = groups.get(message.pg_id) if message.pg_id else groups.named(message.name, message.namespace)
            if view is None or not message.wait:
                channel.send_nowait(PlacementGroupReply(req=message.req, view=view))
            else:
                self._nursery.start_soon(self._answer_group_wait, channel, message.req, view.pg_id)

    async def _answer_group_wait(self, channel: Channel, req: int, pg_id: bytes) -> None:
        async with trio.open_nursery() as nursery:

            async def give_up_when_closed() -> None:
                await channel.closed_event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(give_up_when_closed)
            view = await self.groups.wait(pg_id)
            if not channel.closed:
                channel.send_nowait(PlacementGroupReply(req=req, view=view))
            nursery.cancel_scope.cancel()

    async def _answer_state(self, channel: Channel, query: StateQuery) -> None:
        reply = await _state_reply(self.inspect, query)
        if not channel.closed:
            try:
                channel.send_nowait(reply)
            except trio.ClosedResourceError:
                pass

    async def _answer_wait(self, channel: Channel, message: WaitActor) -> None:
        async with trio.open_nursery() as nursery:

            async def give_up_when_closed() -> None:
                await channel.closed_event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(give_up_when_closed)
            view = await self.actors.wait(message.actor_id, message.after, message.ended)
            if not channel.closed:
                channel.send_nowait(ActorReply(req=message.req, view=view))
            nursery.cancel_scope.cancel()


async def _state_reply(service: StateService, query: StateQuery) -> StateReply:
    try:
        return StateReply(req=query.req, payload=await service.answer(query))
    except QueryError as exc:
        return StateReply(req=query.req, error=str(exc))
    except Exception as exc:  # a bug answering one query must not take the head down
        log.exception("head: state query %r failed", query.kind)
        return StateReply(req=query.req, error=f"the head failed to answer: {type(exc).__name__}: {exc}")


def _peer_ip(channel: Channel) -> str | None:
    sock = getattr(channel.stream, "socket", None)
    try:
        peer = sock.getpeername() if sock is not None else None
    except OSError:
        return None
    return peer[0] if isinstance(peer, tuple) else None
