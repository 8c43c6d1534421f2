"""Waiting on objects leaves nothing behind: no waiter in an entry, no entry in the table,
no object in the store, once nothing refers to it."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import pytest
import trio

import actorlib
from actorlib._core import current
from actorlib.exceptions import GetTimeoutError, TaskCancelledError

from .conftest import poll

pytestmark = pytest.mark.usefixtures("cluster")

STORED = 300_000  # bytes: returned through the store, not inline


@actorlib.remote
def gated(gate: str, size: int = STORED) -> bytes:
    """Stays pending until ``gate`` exists."""
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)
    return b"x" * size


@actorlib.remote
def consume(value: bytes) -> int:
    return len(value)


def usage() -> tuple[int, int]:
    runtime = current()
    return len(runtime.objects), runtime.store.stats().used


def baseline() -> tuple[int, int]:
    """Table entries and store bytes, once what earlier tests dropped is gone."""
    runtime = current()
    gc.collect()
    poll(lambda: not runtime.submitter._running and not runtime.objects._decrefs, timeout=30)
    return usage()


def settled(before: tuple[int, int]):
    """True once no task is in flight and the table and store are back to ``before``."""
    runtime = current()
    return lambda: not runtime.submitter._running and all(now <= then for now, then in zip(usage(), before))


def dropped(object_id: bytes) -> None:
    """Wait until this process's last reference to the object was counted out."""
    entry = current().objects.get(object_id)
    gc.collect()
    poll(lambda: entry.count <= 0, timeout=10)


def waiters_of(ref) -> list:
    entry = current().objects.get(ref.binary())
    return list(entry.waiters or ()) if entry is not None else []


def test_a_ref_dropped_after_get_timed_out_is_freed(tmp_path):
    before, gate = baseline(), tmp_path / "gate"
    ref = gated.remote(str(gate))
    with pytest.raises(GetTimeoutError) as timed_out:
        actorlib.get(ref, timeout=0.2)
    object_id = ref.binary()
    del ref, timed_out  # while its task still runs
    dropped(object_id)
    gate.touch()
    poll(settled(before), timeout=30)


def test_refs_dropped_after_wait_returned_early_are_freed(tmp_path):
    before, gate = baseline(), tmp_path / "gate"
    slow, fast = gated.remote(str(gate)), gated.remote(str(tmp_path))  # tmp_path exists: no wait
    ready, rest = actorlib.wait([slow, fast], num_returns=1, timeout=30)
    assert ready == [fast] and rest == [slow]
    object_id = slow.binary()
    del slow, fast, ready, rest
    dropped(object_id)
    gate.touch()
    poll(settled(before), timeout=30)


def test_repeated_timed_out_waits_leave_no_waiter_in_the_entry(tmp_path):
    gate = tmp_path / "gate"
    ref = gated.remote(str(gate))
    for _ in range(50):
        assert actorlib.wait([ref], timeout=0.001) == ([], [ref])
        with pytest.raises(GetTimeoutError):
            actorlib.get(ref, timeout=0.001)
    assert waiters_of(ref) == []
    gate.touch()
    assert len(actorlib.get(ref, timeout=30)) == STORED


@pytest.mark.parametrize("library", ["trio", "asyncio"])
def test_a_cancelled_await_leaves_no_waiter(tmp_path, library):
    gate = tmp_path / "gate"
    ref = gated.remote(str(gate))

    async def await_trio() -> None:
        with trio.move_on_after(0.1):
            await ref

    async def await_asyncio() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ref._get_async(), 0.1)

    trio.run(await_trio) if library == "trio" else asyncio.run(await_asyncio())
    assert waiters_of(ref) == []
    gate.touch()
    assert len(actorlib.get(ref, timeout=30)) == STORED


def test_the_argument_of_a_task_cancelled_while_it_waited_is_freed(tmp_path):
    before, gate = baseline(), tmp_path / "gate"
    dep = gated.remote(str(gate))
    task = consume.remote(dep)
    actorlib.cancel(task)
    with pytest.raises(TaskCancelledError) as cancelled:
        actorlib.get(task, timeout=30)
    object_id = dep.binary()
    del dep, task, cancelled  # the cancelled task's wait on its argument is all that is left
    dropped(object_id)
    gate.touch()
    poll(settled(before), timeout=30)


def test_a_wait_loop_leaves_the_table_and_the_store_as_it_found_them():
    before = baseline()
    pending = [gated.remote("/", STORED) for _ in range(200)]
    drained = 0
    while pending:
        ready, pending = actorlib.wait(pending, timeout=60)
        assert ready, "wait() timed out"
        assert all(waiters_of(ref) == [] for ref in pending[:50])  # a blocked wait left nothing
        drained += len(actorlib.get(ready[0]))
    assert drained == 200 * STORED
    del ready, pending
    poll(settled(before), timeout=30)


def test_a_list_wait_returned_is_checked_again_once_changed(tmp_path):
    gate = tmp_path / "gate"
    refs = [gated.remote(str(gate)) for _ in range(2)]
    _, rest = actorlib.wait(refs, timeout=0)
    rest.append(rest[0])  # now a ref twice: wait() must see it, though it made the list
    with pytest.raises(ValueError, match="more than once"):
        actorlib.wait(rest, timeout=0)
    rest.pop()
    rest[0] = "not a ref"
    with pytest.raises(TypeError, match="ObjectRefs"):
        actorlib.wait(rest, timeout=0)
    gate.touch()
    assert len(actorlib.get(refs, timeout=30)) == 2


@actorlib.remote
def wait_for_all(refs: list) -> tuple[int, int]:
    """Waits on refs it borrows (nested in its argument): their owner must be asked for them."""
    ready, rest = actorlib.wait(refs, num_returns=len(refs), timeout=60)
    return len(ready), len(rest)


def test_a_task_waits_on_refs_it_borrows(tmp_path):
    gate = tmp_path / "gate"
    refs = [gated.remote(str(gate), 10) for _ in range(3)] + [gated.remote(str(tmp_path), 10)]
    waiting = wait_for_all.remote(refs)
    assert actorlib.wait([waiting], timeout=0.5) == ([], [waiting])  # three are still gated
    gate.touch()
    assert actorlib.get(waiting, timeout=60) == (4, 0)


def test_a_wait_woken_by_other_objects_still_sees_its_own(tmp_path):
    gate = tmp_path / "gate"
    mine = gated.remote(str(gate), 10)
    others = [gated.remote(str(tmp_path), 10) for _ in range(20)]  # complete while we wait
    ready, rest = actorlib.wait([mine], timeout=1)
    assert (ready, rest) == ([], [mine])
    gate.touch()
    assert actorlib.wait([mine], timeout=60) == ([mine], [])
    assert len(actorlib.get(others, timeout=60)) == 20
