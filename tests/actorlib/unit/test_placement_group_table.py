"""The head's placement group table: removed groups leave it for a bounded history of views."""

from __future__ import annotations

import trio
import trio.testing

from actorlib._head._groups import PlacementGroups
from actorlib._wire import PlacementGroupSpec


class Node:
    """An in-process node that agrees to every bundle."""

    node_id = b"n1"
    total = {"CPU": 100.0}
    available = {"CPU": 100.0}

    async def prepare_bundles(self, pg_id: bytes, bundles: dict) -> str:
        return ""

    async def commit_bundles(self, pg_id: bytes) -> str:
        return ""

    async def release_bundles(self, pg_id: bytes, indexes: list, reason: str) -> str:
        return ""


def group_spec(i: int) -> PlacementGroupSpec:
    return PlacementGroupSpec(pg_id=i.to_bytes(8, "big"), bundles=[{"CPU": 1.0}], strategy="PACK", name=f"g{i}")


async def test_removed_groups_leave_the_table_and_the_history_is_bounded():
    groups = PlacementGroups(lambda: [Node()], removed_kept=3)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(groups.run)
        for i in range(8):
            assert groups.create(group_spec(i), None) == ""
            with trio.fail_after(10):
                placed = await groups.wait(group_spec(i).pg_id)
            assert placed is not None and placed.state == "CREATED"
            assert groups.remove(group_spec(i).pg_id) == ""
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert groups._groups == {} and groups._names == {}
    assert [(int.from_bytes(v.pg_id, "big"), v.state) for v in groups.views()] == [(5, "REMOVED"), (6, "REMOVED"), (7, "REMOVED")]
    remembered = await groups.wait((7).to_bytes(8, "big"))  # asked after the fact: REMOVED at once
    assert remembered is not None and remembered.state == "REMOVED"
    assert groups.get((0).to_bytes(8, "big")) is None  # forgotten: the oldest go first
    assert groups.remove((7).to_bytes(8, "big")) == ""  # removing it again is no error
    assert groups.named("g7", "") is None


async def test_a_group_removed_while_someone_waits_for_it_answers_removed():
    groups = PlacementGroups(lambda: [], removed_kept=0)  # no node: it stays PENDING; nothing remembered
    assert groups.create(group_spec(1), None) == ""
    answers = []

    async def ask() -> None:
        answers.append(await groups.wait(group_spec(1).pg_id))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask)
        await trio.testing.wait_all_tasks_blocked()
        groups.remove(group_spec(1).pg_id, "gone")
    assert answers[0] is not None and answers[0].state == "REMOVED" and answers[0].reason == "gone"
