"""The head's actor directory, with an in-process node: waiting for actors it has not heard of yet."""

from __future__ import annotations

import tracemalloc

import msgspec
import trio
import trio.testing

from actorlib._head import _actors
from actorlib._head._actors import ActorDirectory
from actorlib._head._state import SqliteState
from actorlib._wire import ActorSpec, ActorView, Inline


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


# ---- dead actors: out of the live table, into a bounded history of views ------------------


class Host(Node):
    """A node that starts actors and kills them on request, as a real node reports it."""

    def __init__(self) -> None:
        super().__init__()
        self.directory: ActorDirectory | None = None

    def kill_actor(self, actor_id: bytes, no_restart: bool, reason: str) -> None:
        assert self.directory is not None
        self.directory.update(actor_id, "DEAD", cause=reason)


def blob_spec(actor_id: bytes, size: int) -> ActorSpec:
    return msgspec.structs.replace(spec(actor_id), class_blob=b"x" * size, name=f"n{actor_id.hex()}", namespace="ns")


def churn(directory: ActorDirectory, count: int, start: int = 0, size: int = 0) -> None:
    for i in range(start, start + count):
        actor_id = i.to_bytes(8, "big")
        directory.create(blob_spec(actor_id, size), None, False)
        assert directory.kill(actor_id, True, "done") == ""


def test_a_dead_actor_leaves_the_live_table_and_its_view_is_kept():
    host = Host()
    directory = host.directory = ActorDirectory(lambda: [host])
    churn(directory, 3)
    assert directory._actors == {} and directory._names == {}
    views = directory.views()
    assert [v.state for v in views] == ["DEAD"] * 3
    first = views[0]
    expected = ((0).to_bytes(8, "big"), "A", "n" + (0).to_bytes(8, "big").hex(), "done", 1, b"n1")
    assert (first.actor_id, first.class_name, first.name, first.cause, first.pid, first.node_id) == expected  # where it last ran
    assert directory.named(first.name, "ns") is None


async def test_the_dead_actor_history_is_bounded_oldest_first():
    host = Host()
    directory = host.directory = ActorDirectory(lambda: [host], dead_kept=5)
    churn(directory, 12)
    kept = [int.from_bytes(v.actor_id, "big") for v in directory.views()]
    assert kept == [7, 8, 9, 10, 11]
    remembered = await directory.wait((11).to_bytes(8, "big"), 0)  # asked after the fact: DEAD at once
    assert remembered is not None and remembered.state == "DEAD"
    assert directory.kill((11).to_bytes(8, "big"), True, "again") == ""  # already dead: no error


def test_dead_actors_do_not_keep_their_specs():
    """The head's memory stays flat however many actors come and go (their specs are freed)."""
    host = Host()
    directory = host.directory = ActorDirectory(lambda: [host])
    churn(directory, _actors.DEAD_ACTORS_KEPT, size=20_000)  # the history is full
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        churn(directory, 2000, start=_actors.DEAD_ACTORS_KEPT, size=20_000)  # 40 MB of specs passed through
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 1_000_000, f"the directory kept {grown} bytes after 2,000 more actors came and went"


def test_a_node_back_with_an_actor_the_head_buried_is_told_to_kill_it():
    host = Host()
    directory = host.directory = ActorDirectory(lambda: [host])
    churn(directory, 1)
    actor_id = (0).to_bytes(8, "big")
    killed: list[bytes] = []
    host.kill_actor = lambda actor_id, no_restart, reason: killed.append(actor_id)  # type: ignore[method-assign]
    directory.node_joined(host, [ActorView(actor_id=actor_id, state="ALIVE", address="unix:/x", pid=7)])
    assert killed == [actor_id] and directory._actors == {}


def test_an_owner_leaving_kills_only_its_live_actors():
    host = Host()
    directory = host.directory = ActorDirectory(lambda: [host])
    mine, theirs = object(), object()
    directory.create(spec(b"m1"), mine, False)  # type: ignore[arg-type]
    directory.create(spec(b"t1"), theirs, False)  # type: ignore[arg-type]
    directory.owner_gone(mine)  # type: ignore[arg-type]
    assert [(v.actor_id, v.state) for v in directory.views()] == [(b"t1", "ALIVE"), (b"m1", "DEAD")]
    assert list(directory._owned) == [theirs]


async def test_after_a_head_restart_a_caller_waiting_past_the_incarnation_it_saw_is_answered(tmp_path):
    """A caller saw incarnation N of a detached actor under the previous head; that process died
    with the head, and the new head creates the actor again. The caller's WaitActor(after=N) must
    be answered by the new incarnation, whatever N was (it used to wait for ever)."""
    state = SqliteState(tmp_path / "state.db")
    before = ActorDirectory(lambda: [Node()], state)
    before.create(msgspec.structs.replace(spec(b"d1"), detached=True, name="keeper"), None, False)
    for _ in range(3):  # restarted a few times under the first head
        before.update(b"d1", "RESTARTING")
        before.update(b"d1", "ALIVE", address="unix:/x", pid=2)
    seen = before.named("keeper", "")
    assert seen is not None and seen.restarts == 3
    after = ActorDirectory(lambda: [Node()], state)  # the next head of the session
    after.recover()
    found = []

    async def ask() -> None:
        found.append(await after.wait(b"d1", seen.incarnation))

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()
            after.place_unclaimed()  # no node reported it: created again
    assert found[0].state == "ALIVE" and found[0].incarnation > seen.incarnation and found[0].restarts == 0
