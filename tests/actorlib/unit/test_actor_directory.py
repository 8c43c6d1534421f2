"""The head's actor directory, with an in-process node: waiting for actors it has not heard of yet."""

from __future__ import annotations

import trio
import trio.testing

from actorlib._head import _actors
from actorlib._head._actors import ActorDirectory
from actorlib._wire import ActorSpec, Inline


class Node:
    node_id = b"n1"
    total = {"CPU": 1.0}
    available = {"CPU": 1.0}

    def __init__(self) -> None:
        self.started: list[bytes] = []

    def start_actor(self, spec, directory) -> None:
        self.started.append(spec.actor_id)
        directory.update(spec.actor_id, "ALIVE", address="unix:/x", pid=1, node_id=self.node_id)


def spec(actor_id: bytes) -> ActorSpec:
    return ActorSpec(
        actor_id=actor_id, class_name="A", class_id=b"c", class_blob=b"", args=Inline(data=b"", buffers=[]),
        resolved=[], methods={}, placement={"CPU": 1.0},
    )  # fmt: skip


async def test_a_caller_may_ask_for_an_actor_before_its_creation_arrives():
    node = Node()
    directory = ActorDirectory(lambda: [node])
    found = []

    async def ask() -> None:
        found.append(await directory.wait(b"a1", -1))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        assert not found  # still waiting: the head has not heard of a1
        directory.create(spec(b"a1"), None, False)
    assert found[0] is not None and found[0].state == "ALIVE" and node.started == [b"a1"]


async def test_an_actor_never_created_is_unknown_after_the_grace(monkeypatch, autojump_clock):
    directory = ActorDirectory(lambda: [Node()])
    monkeypatch.setattr(_actors, "UNKNOWN_GRACE", 5.0)
    started = trio.current_time()
    assert await directory.wait(b"nobody", -1) is None
    assert trio.current_time() - started >= 5.0
