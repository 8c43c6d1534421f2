"""Nodes that run in their own processes: the head's proxy for each, and their liveness."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import trio

from .._wire import ActorSpec, Channel, NodeView, StartActor, StopActor

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
        self.last_beat = trio.current_time()

    def view(self) -> NodeView:
        return msgspec.structs.replace(self._view, available=dict(self.available), pending=self.pending)

    def beat(self, available: dict[str, float], pending: int) -> None:
        self.available = dict(available)
        self.pending = pending
        self.last_beat = trio.current_time()

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
