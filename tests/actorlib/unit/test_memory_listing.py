"""`actorlib memory`, the pure parts: the kind of reference, the head's join, the rendering."""

from __future__ import annotations

from rich.console import Console

from actorlib._cli._render import memory_renderable
from actorlib._state import MemoryResult, NodeMemory, ObjectRefState, StoredObjectState, join_memory, reference_type


def test_the_first_reason_that_applies_names_the_reference():
    assert reference_type(local_refs=1, task_refs=1, escaped=True, borrowers=1) == "USED_BY_PENDING_TASK"
    assert reference_type(local_refs=1, task_refs=0, escaped=True, borrowers=1) == "LOCAL_REFERENCE"
    assert reference_type(local_refs=0, task_refs=0, escaped=True, borrowers=1) == "CAPTURED_IN_OBJECT"
    assert reference_type(local_refs=0, task_refs=0, escaped=False, borrowers=2) == "BORROWED_BY_OTHERS"


def row(object_id: str, node: str, **fields) -> ObjectRefState:
    base = dict(pid=1, holder="driver:aa", reference="LOCAL_REFERENCE", owned=True, owner="addr", where="STORE", size=10)
    return ObjectRefState(object_id=object_id, node_id=node, **{**base, **fields})


def result() -> MemoryResult:
    a = NodeMemory(
        node_id="a" * 32, ip="127.0.0.1", store_used=10, store_capacity=100,
        stored=[StoredObjectState(object_id="s1", size=10), StoredObjectState(object_id="leak", size=7, owner_id="dead")],
        references=[row("o1", "a" * 32, stored_id="s2", stored_on="b" * 32), row("o2", "a" * 32, where="INLINE", size=5, stored_id="")],
        processes=1,
    )  # fmt: skip
    b = NodeMemory(
        node_id="b" * 32, ip="127.0.0.2", stored=[StoredObjectState(object_id="s2", size=10)],
        references=[row("o1", "b" * 32, owned=False, holder="worker:bb", where="PENDING", size=-1, stored_id="s2")],
    )  # fmt: skip
    return MemoryResult(nodes=join_memory([a, b]))


def test_the_head_counts_references_to_each_stored_object_across_nodes():
    a, b = result().nodes
    assert {s.object_id: s.references for s in a.stored} == {"s1": 0, "leak": 0}
    assert {s.object_id: s.references for s in b.stored} == {"s2": 2}  # held on node a and on node b
    assert (a.inline_bytes, b.inline_bytes) == (5, 0)  # owned inline values only


def test_the_listing_flags_what_nobody_references():
    console = Console(width=300, no_color=True)
    with console.capture() as out:
        console.print(memory_renderable(result()))
    text = out.get()
    assert "not fetched" in text and "driver aa" in text  # a borrowed ref, and its owner by name
    assert "no process reports a reference to: s1 (10 B" in text and "leak (7 B, owner dead)" in text
    assert "2 nodes: 10 B in stores, 3 references" in text
    with console.capture() as out:
        console.print(memory_renderable(result(), stats_only=True))
    assert "o1" not in out.get() and out.get().count("node ") == 2
