"""The head service: registers drivers (one job each) and answers questions about the cluster."""

from __future__ import annotations

import itertools
import logging

import trio

from .._wire import Channel, ClusterInfoReply, ClusterInfoRequest, DriverRegistered, HeadMessage, RegisterDriver, serve
from ._registry import Registry

log = logging.getLogger("actorlib.head")


class HeadService:
    """Serves the head socket."""

    def __init__(self, address: str, token: str, registry: Registry) -> None:
        self.address = address
        self.token = token
        self.registry = registry
        self._jobs = itertools.count(1)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(serve, self.address, self.token, HeadMessage, self._serve_channel)
            task_status.started()

    async def _serve_channel(self, channel: Channel) -> None:
        async for message in channel:
            if isinstance(message, RegisterDriver):
                node = self.registry.head_node()
                if node is None:
                    log.warning("driver %s registered while no node is up", channel.peer)
                    return
                job_id = f"{next(self._jobs):08x}"
                channel.send_nowait(DriverRegistered(req=message.req, job_id=job_id, node=node))
            elif isinstance(message, ClusterInfoRequest):
                channel.send_nowait(ClusterInfoReply(req=message.req, nodes=self.registry.views()))
