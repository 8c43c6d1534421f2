"""Nodes that run in their own processes: the head's proxy for each, and their liveness."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .. import _placement as placement
from .._node import _resources as res
from .._wire import (
    ActorSpec,
    BundlesReply,
    Channel,
    CommitBundles,
    Demand,
    NodeQuery,
    NodeQueryReply,
    DrainNode,
    EntrypointState,
    ForgetJob,
    JobSpec,
    NodeView,
    Pending,
    PrepareBundles,
    ReleaseBundles,
    StartActor,
    StartJob,
    StopActor,
    StopJob,
)

log = logging.getLogger("actorlib.head")

DEFAULT_HEARTBEAT = 0.5  # seconds between a node's heartbeats
DEFAULT_NODE_TIMEOUT = 4.0  # seconds without one before the node is declared dead


class RemoteNode:
    """The head's handle on a node process connected over its channel."""

    def __init__(self, view: NodeView, channel: Channel) -> None:
        self.node_id = view.node_id
        self._view = view
        self.channel = channel
        self.total = {k: v for k, v in view.total.items() if k != "object_store_memory"}
        self.available = dict(view.available)
        self.pending = 0
        self.demands: list[Demand] = []
        self.last_beat = trio.current_time()
        self.requests = Pending()  # the head's requests to the node (placement group bundles)
        self.busy = view.busy
        self.drained = view.draining  # what the node says: it takes no new work
        self.draining = False  # what the autoscaler asked: nothing new is placed here

    def view(self) -> NodeView:
        total = {**self.total, "object_store_memory": self._view.total.get("object_store_memory", 0.0)}
        return msgspec.structs.replace(
            self._view, total=total, available=dict(self.available), pending=self.pending, demands=self.demands,
            silent=round(trio.current_time() - self.last_beat, 3), busy=self.busy, draining=self.draining or self.drained,
        )

    def beat(
        self, available: dict[str, float], pending: int, total: dict[str, float] | None = None, demands: list[Demand] = []
    ) -> None:
        self.available = dict(available)
        self.pending = pending
        self.demands = demands
        if total is not None:
            self.total = {k: v for k, v in total.items() if k != "object_store_memory"}
        self.last_beat = trio.current_time()

    def reported(self, busy: int, drained: bool) -> None:
        """From a heartbeat: what the node holds, and whether it has taken its drain."""
        self.busy = busy
        self.drained = drained

    def drain(self, drain: bool, reason: str = "") -> None:
        """The autoscaler's word: take no new work (``drain``), or take it again."""
        self.draining = drain
        self._send(DrainNode(drain=drain, reason=reason))

    def committed(self, pg_id: bytes, bundles: dict[int, dict[str, float]]) -> None:
        """The node offers these bundles now (its next heartbeat would say so too)."""
        for index, bundle in bundles.items():
            offered = placement.bundle_resources(pg_id.hex(), index, bundle)
            res.add(self.total, offered)
            res.add(self.available, offered)

    def released(self, pg_id: bytes) -> None:
        for resources in (self.total, self.available):
            for name in [name for name in resources if placement.of_group(name, pg_id.hex())]:
                del resources[name]

    async def prepare_bundles(self, pg_id: bytes, bundles: dict[int, dict[str, float]]) -> str:
        return await self._request(lambda req: PrepareBundles(req=req, pg_id=pg_id, bundles=bundles))

    async def commit_bundles(self, pg_id: bytes) -> str:
        return await self._request(lambda req: CommitBundles(req=req, pg_id=pg_id))

    async def release_bundles(self, pg_id: bytes, indexes: list[int], reason: str) -> str:
        return await self._request(lambda req: ReleaseBundles(req=req, pg_id=pg_id, indexes=indexes, reason=reason))

    async def _request(self, make: Any) -> str:
        req = self.requests.new()
        self._send(make(req))
        reply: BundlesReply = await self.requests.wait(req)
        return reply.error

    async def query(self, kind: str) -> bytes:
        """The node's answer to a state query (``_node._node_inspector``); raises if it has none."""
        req = self.requests.new()
        self._send(NodeQuery(req=req, kind=kind))
        reply: NodeQueryReply = await self.requests.wait(req)
        if reply.error:
            raise RuntimeError(reply.error)
        return reply.payload

    def start_job(self, spec: JobSpec, report: Callable[[EntrypointState], None]) -> None:
        """Ask the node to run a job's entrypoint; it reports back on its channel (not to ``report``)."""
        self._send(StartJob(spec=spec))

    def stop_job(self, submission_id: str, reason: str) -> None:
        self._send(StopJob(submission_id=submission_id, reason=reason))

    def forget_job(self, submission_id: str) -> None:
        self._send(ForgetJob(submission_id=submission_id))

    def start_actor(self, spec: ActorSpec, directory: Any) -> None:
        self._send(StartActor(spec=spec))

    def kill_actor(self, actor_id: bytes, no_restart: bool, reason: str) -> None:
        self._send(StopActor(actor_id=actor_id, no_restart=no_restart, reason=reason))

    def _send(self, message: Any) -> None:
        if not self.channel.closed:
            try:
                self.channel.send_nowait(message)
            except trio.ClosedResourceError:
                pass
