"""A node process's link to the head: registration, heartbeats, actor commands, fencing.

If the head cannot be reached for ``grace`` seconds, the node stops itself
(and so every worker and actor it hosts): a node cut off from the head must
not keep running work the head will have placed elsewhere. Likewise when the
head refuses it because it declared it dead (it missed its heartbeats, say,
while frozen): its work runs elsewhere now.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

import supervisors

from .. import _ids
from .._wire import (
    ActorState,
    AuthenticationError,
    BundlesReply,
    Channel,
    CommitBundles,
    ClusterView,
    DrainNode,
    EntrypointState,
    ForgetJob,
    Heartbeat,
    HeadMessage,
    NodeQuery,
    NodeQueryReply,
    NodeRegistered,
    NodeView,
    Pending,
    PrepareBundles,
    ProtocolError,
    RegisterNode,
    ReleaseBundles,
    StartActor,
    StartJob,
    StopActor,
    StopJob,
    connect,
)

log = logging.getLogger("actorlib.node")

RECONNECT_EVERY = 0.5


class Fenced(supervisors.Shutdown):
    """The node lost the head for longer than its grace period, or the head declared it dead,
    and it stops itself: an orderly stop (a shutdown exit, logged without a traceback)."""


class TokenRefused(Exception):
    """The head refused this node's cluster token the first time it tried to join: waiting out
    the grace period would not change that, so the node stops at once, saying why."""


class HeadLink:
    """Registry and actor directory for a NodeService running outside the head's process."""

    def __init__(self, head_address: str, token: str, *, grace: float) -> None:
        self.head_address = head_address
        self.token = token
        self.grace = grace
        self.service: Any = None
        self.cluster: list[NodeView] = []  # every live node, as of the last heartbeat
        self._node_types: list[dict[str, float]] = []  # what the head's autoscaler could add
        self._settling = False  # the head restarted and its old nodes may still register again
        self._added = trio.Event()
        self._channel: Channel | None = None
        self._pending = Pending()
        self._started = False
        # Ends of job entrypoints that happened while the head was away: told when it is back.
        self._unsent: dict[str, EntrypointState] = {}
        self._heard = 0.0  # when the head last said anything
        self._silent = False  # the last connection ended in silence (a hung head)
        self.refused = ""  # why the head refused this node for good (it declared it dead)

    # ---- the Registry interface (NodeService calls these) -------------------------------

    def add(self, node: Any) -> None:
        self.service = node
        self._added.set()

    def remove(self, node: Any) -> None:
        if self.service is node:
            self.service = None

    def views(self) -> list[NodeView]:
        """Every live node, as of the last heartbeat."""
        return self.cluster

    def node_types(self) -> list[dict[str, float]]:
        """The resources of node types the head's autoscaler could add (none without one)."""
        return self._node_types

    def settling(self) -> bool:
        """Whether the head restarted lately and nodes it knew may still register again."""
        return self._settling

    # ---- the Directory interface (ActorHost calls this) ------------------------------------

    def update(self, actor_id: bytes, state: str, **fields: Any) -> None:
        keep = {k: fields[k] for k in ("address", "pid", "cause", "core") if k in fields}
        self._send(ActorState(actor_id=actor_id, state=state, **keep))

    def report_entrypoint(self, state: EntrypointState) -> None:
        """What became of a job's entrypoint here (kept for the next registration if the head is away)."""
        if not self._send(state) and state.state != "RUNNING":
            self._unsent[state.submission_id] = state

    def _send(self, message: Any) -> bool:
        channel = self._channel
        if channel is not None and not channel.closed:
            try:
                channel.send_nowait(message)
                return True
            except trio.ClosedResourceError:
                pass
        return False

    # ---- running -----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Register, then heartbeat and serve the head's commands; reconnect if the head goes
        away; raise Fenced after ``grace`` seconds without it."""
        await self._added.wait()
        lost_at: float | None = trio.current_time()
        last_error: BaseException | None = None
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    channel = await connect(nursery, self.head_address, self.token, HeadMessage, name=self._name())
                    self._channel = channel
                    period = await self._register(channel)
                    if not self._started:
                        self._started = True
                        task_status.started()
                    lost_at = None
                    nursery.start_soon(self._beat, channel, period)
                    await self._serve(channel, nursery)
            except* (ConnectionError, EOFError, ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError) as group:
                # ConnectionError: ConnectionFailed (AuthenticationError too), a refusal, or silence
                last_error = group.exceptions[0]
                log.warning("lost the head at %s: %s", self.head_address, last_error)
            finally:
                self._pending.fail_all(ConnectionError("lost the head"))
                self._pending = Pending()
                self._channel = None
            if not self._started and isinstance(last_error, AuthenticationError):
                raise TokenRefused(f"the head at {self.head_address} does not accept this node's token: {last_error}")
            if self.refused:
                raise Fenced(f"the head at {self.head_address} declared this node dead: {self.refused}")
            now = trio.current_time()
            first = lost_at is None
            if lost_at is None:  # a head that fell silent was lost when it did; a closed one, now
                lost_at = self._heard if self._silent else now
            if now - lost_at > self.grace:
                raise Fenced(f"could not reach the head at {self.head_address} for {self.grace:g}s (last: {last_error})")
            if not first:  # at once the first time: a node the head declared dead hears so soonest
                await trio.sleep(RECONNECT_EVERY)

    def _name(self) -> str:
        return f"node:{self.service.node_id.hex()}"

    async def _register(self, channel: Channel) -> float:
        service = self.service
        hosted = service.actors.views() if service.actors is not None else []
        entrypoints = [*service.entrypoint_states(), *self._unsent.values()]
        self._unsent = {}
        channel.send_nowait(
            RegisterNode(req=0, node=service.view(), actors=hosted, groups=service.groups(), entrypoints=entrypoints)
        )
        reply = await self._receive(channel)
        if isinstance(reply, NodeRegistered) and reply.fenced:
            self.refused = reply.error
            raise ConnectionError(f"the head refused this node: {reply.error}")
        if not isinstance(reply, NodeRegistered) or reply.error:
            raise ConnectionError(f"the head refused this node: {getattr(reply, 'error', reply)}")
        log.info("node %s registered with the head at %s", _ids.short(service.node_id), self.head_address)
        return reply.period

    async def _beat(self, channel: Channel, period: float) -> None:
        while not channel.closed:
            service = self.service
            if service is not None:
                view = service.view()
                channel.send_nowait(
                    Heartbeat(
                        node_id=view.node_id, available=view.available, pending=view.pending, total=view.total,
                        demands=view.demands, busy=view.busy, draining=view.draining,
                    )
                )
            await trio.sleep(period)

    async def _receive(self, channel: Channel) -> Any:
        """The head's next message. It answers every heartbeat, so ``grace`` seconds of silence
        mean a hung head: raises ConnectionError (and the node fences itself as for a lost one)."""
        with trio.move_on_after(self.grace):
            message = await channel.receive()
            self._heard = trio.current_time()
            self._silent = False
            return message
        self._silent = True
        raise ConnectionError(f"the head at {self.head_address} said nothing for {self.grace:g}s")

    async def _serve(self, channel: Channel, nursery: trio.Nursery) -> None:
        while True:
            message = await self._receive(channel)
            service = self.service
            if isinstance(message, ClusterView):
                self.cluster = message.nodes
                self._node_types = message.node_types
                self._settling = message.settling
            elif service is None:
                self._without_service(message)
            elif isinstance(message, DrainNode):
                service.drain(message.drain)
            elif isinstance(message, StartActor):
                service.start_actor(message.spec, self)
            elif isinstance(message, StopActor):
                service.kill_actor(message.actor_id, message.no_restart, message.reason)
            elif isinstance(message, NodeQuery):
                nursery.start_soon(_answer_query, service, channel, message)
            elif isinstance(message, (PrepareBundles, CommitBundles, ReleaseBundles)):
                error = await _bundles(service, message)
                channel.send_nowait(BundlesReply(req=message.req, ok=not error, error=error))
            elif isinstance(message, (StartJob, StopJob, ForgetJob)):
                self._job_request(service, message)

    def _without_service(self, message: Any) -> None:
        """The node's service is restarting: a job sent here now is refused (the head places it again)."""
        if isinstance(message, StartJob):
            sid = message.spec.submission_id
            self.report_entrypoint(EntrypointState(submission_id=sid, state="REFUSED", error="the node's service is restarting"))

    def _job_request(self, service: Any, message: StartJob | StopJob | ForgetJob) -> None:
        if isinstance(message, StartJob):
            service.start_job(message.spec, self.report_entrypoint)
        elif isinstance(message, StopJob):
            service.stop_job(message.submission_id, message.reason)
        else:
            service.forget_job(message.submission_id)


async def _bundles(service: Any, message: PrepareBundles | CommitBundles | ReleaseBundles) -> str:
    if isinstance(message, PrepareBundles):
        return await service.prepare_bundles(message.pg_id, message.bundles)  # type: ignore[no-any-return]
    if isinstance(message, CommitBundles):
        return await service.commit_bundles(message.pg_id)  # type: ignore[no-any-return]
    return await service.release_bundles(message.pg_id, message.indexes, message.reason)  # type: ignore[no-any-return]


async def _answer_query(service: Any, channel: Channel, query: NodeQuery) -> None:
    """A state query from the head: answered off the serve loop (sampling CPU takes a moment)."""
    try:
        reply = NodeQueryReply(req=query.req, payload=await service.query(query.kind))
    except Exception as exc:  # a bad query or a bug must not cut the node off from the head
        log.exception("node query %r failed", query.kind)
        reply = NodeQueryReply(req=query.req, error=f"{type(exc).__name__}: {exc}")
    if not channel.closed:
        try:
            channel.send_nowait(reply)
        except trio.ClosedResourceError:
            pass
