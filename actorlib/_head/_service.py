"""The head service: registers drivers (one job each) and answers questions about the cluster."""

from __future__ import annotations

import itertools
import logging

import trio

from .._wire import (
    ActorCreated,
    ActorList,
    ActorReply,
    Channel,
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
    serve,
)
from ._actors import ActorDirectory
from ._registry import Registry

log = logging.getLogger("actorlib.head")


class HeadService:
    """Serves the head socket."""

    def __init__(self, address: str, token: str, registry: Registry) -> None:
        self.address = address
        self.token = token
        self.registry = registry
        self.actors = ActorDirectory(registry.nodes)
        self._jobs = itertools.count(1)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await nursery.start(serve, self.address, self.token, HeadMessage, self._serve_channel)
            task_status.started()

    async def _serve_channel(self, channel: Channel) -> None:
        try:
            await self._serve_messages(channel)
        finally:
            self.actors.owner_gone(channel)

    async def _serve_messages(self, channel: Channel) -> None:
        async for message in channel:
            if isinstance(message, (WaitActor, CreateActor, GetNamedActor, KillActor, ListActors)):
                self._actor_request(channel, message)
            elif isinstance(message, RegisterDriver):
                node = self.registry.head_node()
                if node is None:
                    log.warning("driver %s registered while no node is up", channel.peer)
                    return
                job_id = f"{next(self._jobs):08x}"
                channel.send_nowait(DriverRegistered(req=message.req, job_id=job_id, node=node))
            elif isinstance(message, ClusterInfoRequest):
                channel.send_nowait(ClusterInfoReply(req=message.req, nodes=self.registry.views()))

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

    async def _answer_wait(self, channel: Channel, message: WaitActor) -> None:
        async with trio.open_nursery() as nursery:

            async def give_up_when_closed() -> None:
                await channel.closed_event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(give_up_when_closed)
            view = await self.actors.wait(message.actor_id, message.after)
            if not channel.closed:
                channel.send_nowait(ActorReply(req=message.req, view=view))
            nursery.cancel_scope.cancel()
