"""Spilling on a loopback cluster: a head whose store holds 64 MiB, and a second node whose
tasks read objects that live only in the head's spill file."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest

import actorlib
from actorlib.util import state
from actorlib.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..integration.conftest import poll
from .conftest import MultiNode

MIB = 1024 * 1024
STORE = 64 * MIB


@pytest.fixture(scope="module")
def spilling():
    multi = MultiNode(
        [{"ip": "127.0.0.2", "cpus": 1, "args": ("--object-store-memory", str(STORE))}],
        head_args=("--object-store-memory", str(STORE), "--object-spilling-limit", str(1024 * MIB)),
    )
    with multi.connected():
        yield multi


def spill_files(multi: MultiNode) -> list[Path]:
    """The spill files the cluster's processes hold open (unnamed: seen through /proc)."""
    found = []
    for pid in multi.processes():
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if "/spill/" in target and target.startswith(multi.tmp):
                found.append(fd)
    return found


def head_memory(multi: MultiNode) -> state.NodeMemory:
    head = multi.node_ids()["127.0.0.1"]
    return next(node for node in state.memory().nodes if node.node_id == head)


@actorlib.remote
def checksum(array: np.ndarray) -> tuple[str, int, int]:
    return actorlib.get_runtime_context().get_node_id(), int(array[0]), int(array.sum())


def test_three_stores_worth_is_spilled_read_back_everywhere_and_freed(spilling: MultiNode) -> None:
    keeper = np.arange(MIB, dtype=np.int64)  # 8 MiB, read zero-copy and held throughout
    kept = actorlib.put(keeper)
    pinned = actorlib.get(kept)
    refs = [actorlib.put(np.full(4 * MIB, i, dtype=np.uint8)) for i in range(48)]  # 192 MiB: 3x the store
    memory = head_memory(spilling)
    assert memory.spilled_bytes >= 2 * STORE - 8 * MIB  # the driver's puts all went to the head's store
    where = {row.object_id: row.where for row in memory.references if row.owned}
    assert where[kept.hex()] == "STORE"  # being read: never spilled from under the reader
    assert list(where.values()).count("SPILLED") >= 30
    assert (pinned == keeper).all()  # and its memory was never given to another object

    out = spilling.cli("memory", "--address", spilling.address, "--node", memory.node_id[:12])
    assert "SPILLED" in out.stdout and "spilled" in out.stdout

    for i, ref in enumerate(refs):  # all back, restored from disk where they were spilled
        array = actorlib.get(ref)
        assert array.shape == (4 * MIB,) and array[0] == i and (array == i).all()
        del array

    other = spilling.node_ids()["127.0.0.2"]
    on_other = NodeAffinitySchedulingStrategy(node_id=other, soft=False)
    spilled_now = [ref for ref in refs if where_now(spilling, ref) == "SPILLED"]
    assert spilled_now  # reading everything back moved others out again
    node, first, total = actorlib.get(checksum.options(scheduling_strategy=on_other).remote(spilled_now[0]))
    index = refs.index(spilled_now[0])
    assert (node, first, total) == (other, index, index * 4 * MIB)  # streamed from the head's spill file

    assert spill_files(spilling)  # one unnamed file, open in the head's node
    del refs, spilled_now, pinned, kept
    gc.collect()
    poll(lambda: head_memory(spilling).spilled_bytes == 0, timeout=30)
    files = spill_files(spilling)
    assert files and all(os.stat(fd).st_blocks == 0 for fd in files)  # its disk blocks all went back


def where_now(multi: MultiNode, ref: actorlib.ObjectRef) -> str:
    rows = [row for row in head_memory(multi).references if row.owned and row.object_id == ref.hex()]
    return rows[0].where if rows else ""
