"""Tasks that have not started yet, and the objects referenced, asked of their owners: the
drivers and workers connected here.

Only an owner knows a task that waits for its arguments or for a lease (it pushes tasks
straight to workers), and only a process knows which refs it holds, so a state query for
tasks (or ``actorlib memory``) asks every owner connected to this node at query time:
nothing is recorded on the call path.
"""

from __future__ import annotations

import trio

from .._state import TaskState
from collections.abc import Callable
from typing import Any

from .._wire import Channel, ObjectsQuery, ObjectsReply, Pending, PendingTask, PendingTasksQuery, PendingTasksReply

MAX_PER_OWNER = 10_000  # pending tasks one owner lists (oldest first); it says how many it has in all
MAX_OBJECTS_PER_OWNER = 10_000  # objects one process lists (largest first); it says how many it holds
QUERY_TIMEOUT = 2.0  # seconds an owner may take to answer (a busy one is left out, not waited for)
OWNER_PEERS = ("driver:", "worker:")  # channel peer names of task owners (Identity.peer_name)


class OwnerTasks:
    """The owners connected to one node, and their answers to PendingTasksQuery."""

    def __init__(self) -> None:
        self._owners: set[Channel] = set()
        self._replies = Pending()

    def connected(self, channel: Channel) -> None:
        if channel.peer.startswith(OWNER_PEERS):
            self._owners.add(channel)

    def disconnected(self, channel: Channel) -> None:
        self._owners.discard(channel)

    def reply(self, message: PendingTasksReply | ObjectsReply) -> None:
        self._replies.resolve(message.req, message)

    async def pending(self, limit: int = MAX_PER_OWNER, timeout: float = QUERY_TIMEOUT) -> list[TaskState]:
        """Every connected owner's pending tasks (those answering within ``timeout``)."""
        replies = await self._ask(lambda req: PendingTasksQuery(req=req, limit=limit), timeout)
        return [_state(task) for reply in replies for task in reply.tasks]

    async def objects(self, limit: int = MAX_OBJECTS_PER_OWNER, timeout: float = QUERY_TIMEOUT) -> list[ObjectsReply]:
        """What every connected driver and worker holds references to (those answering within ``timeout``)."""
        return await self._ask(lambda req: ObjectsQuery(req=req, limit=limit), timeout)

    async def _ask(self, make: Callable[[int], Any], timeout: float) -> list[Any]:
        replies: list[Any] = []

        async def ask(channel: Channel) -> None:
            req = self._replies.new()
            try:
                channel.send_nowait(make(req))
            except trio.ClosedResourceError:
                self._replies.resolve(req, None)
            with trio.move_on_after(timeout):
                reply = await self._replies.wait(req)
                if reply is not None:
                    replies.append(reply)

        async with trio.open_nursery() as nursery:
            for channel in list(self._owners):
                nursery.start_soon(ask, channel)
        return replies


def _state(task: PendingTask) -> TaskState:
    return TaskState(
        task_id=task.task_id.hex(), name=task.name, state=task.state,
        type="ACTOR_TASK" if task.actor_id else "NORMAL_TASK", job_id=task.job_id, actor_id=task.actor_id.hex(),
        attempt=task.attempt, creation_time=task.created,
    )  # fmt: skip
