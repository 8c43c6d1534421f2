"""Ids: unique within a process, across threads and across a fork; return ids distinct per index."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest

from actorlib import _ids

# Mints ids in a parent, forks, mints in the child, and prints every id (hex) it saw,
# one process per line: "parent-before", "child", "parent-after". Run in its own
# interpreter so the fork never copies pytest's state.
FORK_SCRIPT = textwrap.dedent(
    """
    import os
    from actorlib import _ids

    before = [_ids.unique_id() for _ in range(1000)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            child = [_ids.unique_id() for _ in range(1000)]
            os.write(write, (" ".join(i.hex() for i in child) + "\\n").encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child_line = pipe.read()
    os.waitpid(pid, 0)
    after = [_ids.unique_id() for _ in range(1000)]
    print(" ".join(i.hex() for i in before))
    print(child_line.strip())
    print(" ".join(i.hex() for i in after))
    """
)


@pytest.fixture(scope="module")
def forked_ids() -> dict[str, list[bytes]]:
    result = subprocess.run([sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result
    return {
        name: [bytes.fromhex(h) for h in line.split()]
        for name, line in zip(["parent-before", "child", "parent-after"], lines)
    }


def test_ids_are_unique_and_sized() -> None:
    ids = [_ids.unique_id() for _ in range(100_000)]
    assert len(set(ids)) == len(ids)
    assert {len(i) for i in ids} == {_ids.TASK_ID_LEN}


def test_ids_are_unique_across_threads() -> None:
    minted: list[list[bytes]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def mint(out: list[bytes]) -> None:
        start.wait()
        out.extend(_ids.unique_id() for _ in range(10_000))

    threads = [threading.Thread(target=mint, args=(out,)) for out in minted]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    everything = [i for out in minted for i in out]
    assert len(set(everything)) == 80_000


def test_ids_are_unique_across_a_fork(forked_ids: dict[str, list[bytes]]) -> None:
    everything = [i for ids in forked_ids.values() for i in ids]
    assert len(everything) == 3000
    assert len(set(everything)) == 3000


def test_ids_are_unique_across_processes(forked_ids: dict[str, list[bytes]]) -> None:
    here = {_ids.unique_id() for _ in range(1000)}
    assert here.isdisjoint(i for ids in forked_ids.values() for i in ids)


def test_short_forms_of_ids_from_different_processes_differ(forked_ids: dict[str, list[bytes]]) -> None:
    parent, child = forked_ids["parent-before"], forked_ids["child"]
    assert {_ids.short(i) for i in parent}.isdisjoint(_ids.short(i) for i in child)


def test_return_ids_are_distinct_per_index_and_derived_from_the_task() -> None:
    task = _ids.task_id()
    returns = [_ids.return_id(task, i) for i in range(1000)]
    assert len(set(returns)) == 1000
    assert all(r.startswith(task) and len(r) == _ids.OBJECT_ID_LEN for r in returns)
    assert _ids.return_id(task, 3) == _ids.return_id(task, 3)
    other = _ids.task_id()
    assert set(returns).isdisjoint(_ids.return_id(other, i) for i in range(1000))


def test_put_ids_never_collide_with_return_ids() -> None:
    puts = {_ids.put_id() for _ in range(1000)}
    assert len(puts) == 1000
    assert {len(p) for p in puts} == {_ids.OBJECT_ID_LEN}
    tasks = [_ids.task_id() for _ in range(100)]
    assert puts.isdisjoint(_ids.return_id(t, i) for t in tasks for i in range(3))


def test_short_forms_are_short_hex_and_distinct_within_a_process() -> None:
    shorts = [_ids.short(_ids.unique_id()) for _ in range(1000)]
    assert len(set(shorts)) == 1000
    assert all(len(s) == 12 and int(s, 16) >= 0 for s in shorts)
