"""``actorlib memory`` (Ray's ``ray memory``): every node's objects and who holds references to them.

Pure: each node fills a NodeMemory from its store and from the drivers and workers
connected to it (each lists the objects it holds references to); the head joins them
(``join_memory``): which store object is referenced by whom, and the totals per node.
"""

from __future__ import annotations

from ._schema import _State

# Ray's reference types, the first that applies to a row (docs/inspecting.md#memory).
USED_BY_PENDING_TASK = "USED_BY_PENDING_TASK"  # an argument of a task or actor call it submitted that has not finished
LOCAL_REFERENCE = "LOCAL_REFERENCE"  # ObjectRef objects in the process
CAPTURED_IN_OBJECT = "CAPTURED_IN_OBJECT"  # a ref serialized into another object: pinned while its owner lives
BORROWED_BY_OTHERS = "BORROWED_BY_OTHERS"  # the owner holds it for the processes borrowing it
SPILLED = "SPILLED"  # where: in its node's spill file on disk, not in the store's memory


class ObjectRefState(_State):
    """One process's references to one object: a row of ``actorlib memory``."""

    object_id: str
    node_id: str  # of the process holding the references
    pid: int
    holder: str  # driver:<id> | worker:<id>
    reference: str  # the kind of reference (the constants above)
    owned: bool
    owner: str  # the owner's address
    where: str  # PENDING | INLINE | STORE | ERROR (with spilling: SPILLED)
    size: int  # -1 while pending
    local_refs: int = 0  # ObjectRef objects in the process (those its unfinished tasks hold included)
    task_refs: int = 0  # held as arguments by the process's unfinished tasks and actor calls
    lineage_refs: int = 0  # held by finished tasks the owner keeps to recompute their results
    borrowers: list[str] = []  # owned: who borrows it
    escaped: bool = False
    lineage: bool = False  # owned: recomputable from the task that made it, which is kept
    stored_on: str = ""  # node id of the store holding it
    stored_id: str = ""  # its id in that store
    actor_id: str = ""  # the holder is this actor's process


class StoredObjectState(_State):
    """One object in a node's store, and how many rows of the listing reference it (0: nobody
    reports holding it — an owner that is not answering, or a leak)."""

    object_id: str
    size: int
    owner_id: str = ""
    sealed: bool = True
    where: str = "STORE"  # or SPILLED: only in the node's spill file, restored when read
    references: int = 0


class NodeMemory(_State):
    """One node: its store's objects, the references held by processes on it, and totals."""

    node_id: str
    ip: str = ""
    store_used: int = 0
    store_capacity: int = 0
    stored: list[StoredObjectState] = []
    references: list[ObjectRefState] = []
    processes: int = 0  # drivers and workers on it that answered
    left_out: int = 0  # references beyond each process's limit, not listed
    inline_bytes: int = 0  # small objects owned by its processes, kept in their own memory
    error: str = ""
    spilled_bytes: int = 0  # of its spill file: objects written to disk when the store was full
    spill_limit: int = 0  # bytes it may spill (0: spilling is off)


class MemoryResult(_State):
    """``StateQuery(kind="memory")``: every live node's NodeMemory; ``partial`` names nodes that did not answer."""

    nodes: list[NodeMemory]
    partial: list[str] = []


def reference_type(local_refs: int, task_refs: int, escaped: bool, borrowers: int) -> str:
    """What keeps the object alive in one process, the first that applies (Ray's names where it has one)."""
    if task_refs:
        return USED_BY_PENDING_TASK
    if local_refs:
        return LOCAL_REFERENCE
    if escaped:
        return CAPTURED_IN_OBJECT
    if borrowers:
        return BORROWED_BY_OTHERS
    return LOCAL_REFERENCE  # no ref left, but a get() or wait() is still looking at it


def join_memory(nodes: list[NodeMemory]) -> list[NodeMemory]:
    """Count, for every stored object, the rows (on any node) that reference it; totals per node."""
    counts: dict[str, int] = {}
    spilled = {stored.object_id for node in nodes for stored in node.stored if stored.where == SPILLED}
    for node in nodes:
        for row in node.references:
            if row.stored_id:
                counts[row.stored_id] = counts.get(row.stored_id, 0) + 1
                if row.where == "STORE" and row.stored_id in spilled:
                    row.where = SPILLED  # its owner knows the store, the store knows it is on disk
    for node in nodes:
        for stored in node.stored:
            stored.references = counts.get(stored.object_id, 0)
        node.inline_bytes = sum(row.size for row in node.references if row.owned and row.where == "INLINE")
    return nodes
