"""``actorlib.cancel(generator)`` of a streaming generator (an ObjectRefGenerator), as in Ray
2.60: unless its task ended, the next item raises TaskCancelledError and the generator stops
there (items that came but were not taken are freed); the task is cancelled as for a ref (a
sync actor's generator method stops at its next ``yield``). Before, cancel() refused an
ObjectRefGenerator with TypeError. ``num_returns="dynamic"`` gives one ObjectRef, in Ray too:
cancelling it works as for any ref."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path

import numpy as np
import pytest
import trio

import actorlib
from actorlib.exceptions import ObjectLostError, TaskCancelledError

from .conftest import poll

pytestmark = pytest.mark.usefixtures("cluster")


def _numbers(marker: str, gate: str, until_cancelled: bool = False):
    """Yields 0, 1, 2 at once, then one number per gate check (``until_cancelled``: the gate
    also opens once the call is cancelled); records how it ended."""
    try:
        for i in range(1000):
            yield i
            if i == 2:
                Path(marker).write_text("yielded 2")
            while i >= 2 and not os.path.exists(gate):
                if until_cancelled and actorlib.get_runtime_context().is_canceled():
                    break
                time.sleep(0.01)
    except BaseException as exc:  # GeneratorExit or a cancel: recorded for the test, then re-raised
        Path(marker).write_text(f"ended: {type(exc).__name__}")
        raise
    Path(marker).write_text("finished")


numbers_task = actorlib.remote(num_returns="streaming")(_numbers)


@actorlib.remote(num_cpus=0)
class SyncNumbers:
    def numbers(self, marker: str, gate: str):
        yield from _numbers(marker, gate, until_cancelled=True)

    def ping(self) -> str:
        return "pong"


@actorlib.remote(num_cpus=0)
class AsyncNumbers:
    async def numbers(self, marker: str, gate: str):
        try:
            for i in range(1000):
                yield i
                if i == 2:
                    Path(marker).write_text("yielded 2")
                while i >= 2 and not os.path.exists(gate):
                    await asyncio.sleep(0.01)
        except BaseException as exc:  # CancelledError or GeneratorExit: recorded, then re-raised
            Path(marker).write_text(f"ended: {type(exc).__name__}")
            raise

    async def ping(self) -> str:
        return "pong"


def _start(kind: str, marker: Path, gate: Path):
    if kind == "task":
        return numbers_task.remote(str(marker), str(gate)), None
    actor = (SyncNumbers if kind == "sync actor" else AsyncNumbers).remote()
    return actor.numbers.options(num_returns="streaming").remote(str(marker), str(gate)), actor


# How the generator's code sees the cancel: a task is interrupted where it waits, a sync
# actor's generator is closed at its next yield (the gate opens to get it there), an async
# actor's is cancelled where it awaits, as Ray 2.60 does it (KeyboardInterrupt in Ray's tasks).
ENDED = {"task": "ended: Cancelled", "sync actor": "ended: GeneratorExit", "async actor": "ended: CancelledError"}


@pytest.mark.parametrize("kind", list(ENDED))
def test_the_next_item_after_cancel_raises_and_the_generator_stops(tmp_path, kind):
    marker, gate = tmp_path / "marker", tmp_path / "gate"
    gen, actor = _start(kind, marker, gate)
    assert actorlib.get(next(gen), timeout=60) == 0
    poll(lambda: marker.exists() and marker.read_text() == "yielded 2", timeout=60)  # 1 and 2 came, not taken
    # A running sync method is not interrupted: once it sees the cancel (then, not before: a
    # gate opened at once let it run to its end under load while the cancel was on its way)
    # it goes to its next yield and is stopped there.
    actorlib.cancel(gen)
    with pytest.raises(TaskCancelledError):
        actorlib.get(next(gen), timeout=30)  # not item 1: as in Ray, what was not taken is dropped
    with pytest.raises(StopIteration):
        next(gen)
    poll(lambda: marker.read_text() == ENDED[kind], timeout=30)
    if actor is not None:
        assert actorlib.get(actor.ping.remote(), timeout=30) == "pong"  # the actor goes on
        actorlib.kill(actor)


def test_cancelling_a_generator_that_ended_leaves_its_items(tmp_path):
    gate = tmp_path / "gate"
    gate.touch()

    @actorlib.remote(num_returns="streaming")
    def three():
        yield from (0, 1, 2)

    gen = three.remote()
    from actorlib._core import current

    poll(lambda: current().streams._streams[gen._task_id].end is not None, timeout=60)
    actorlib.cancel(gen)
    assert [actorlib.get(ref, timeout=30) for ref in gen] == [0, 1, 2]


@actorlib.remote
def wait_for(path: str) -> str:
    while not os.path.exists(path):
        time.sleep(0.01)
    return path


def test_a_generator_cancelled_before_its_task_ran_gives_one_error(tmp_path):
    gate = tmp_path / "gate"
    gen = numbers_task.remote(str(tmp_path / "marker"), wait_for.remote(str(gate)))  # waits for its argument
    actorlib.cancel(gen)
    gate.touch()
    with pytest.raises(TaskCancelledError):
        actorlib.get(next(gen), timeout=30)
    assert list(gen) == []
    assert not (tmp_path / "marker").exists()  # it never ran


def test_async_for_after_cancel_gives_the_error_then_ends(tmp_path):
    marker, gate = tmp_path / "marker", tmp_path / "gate"

    async def consume() -> list:
        gen = numbers_task.remote(str(marker), str(gate))
        seen = [await (await gen.__anext__())]
        while not (marker.exists() and marker.read_text() == "yielded 2"):
            await trio.sleep(0.01)
        actorlib.cancel(gen)
        async for ref in gen:
            try:
                seen.append(await ref)
            except TaskCancelledError:
                seen.append("cancelled")
        return seen

    assert trio.run(consume) == [0, "cancelled"]
    poll(lambda: marker.read_text() == "ended: Cancelled", timeout=30)


def test_force_cancel_of_a_generator_task(tmp_path):
    gen = numbers_task.remote(str(tmp_path / "marker"), str(tmp_path / "gate"))
    assert actorlib.get(next(gen), timeout=60) == 0
    actorlib.cancel(gen, force=True)
    with pytest.raises(TaskCancelledError):
        actorlib.get(next(gen), timeout=30)
    assert list(gen) == []


def test_items_not_taken_and_items_that_come_later_are_freed(tmp_path):
    from actorlib._core import current
    from actorlib._core._streams import item_id

    runtime = current()
    gate = tmp_path / "gate"

    @actorlib.remote(num_cpus=0)
    class Chunks:
        def chunks(self, gate: str):
            for i in range(3):
                yield np.full(50_000, i)  # 400 KB each: kept in the store
            while not os.path.exists(gate):
                time.sleep(0.01)
            yield np.full(50_000, 3)  # comes after the cancel: dropped on arrival

    actor = Chunks.remote()
    gc.collect()
    poll(lambda: len(runtime.streams) == 0, timeout=30)  # earlier tests' generators are gone
    stored_before = runtime.store.stats().objects
    gen = actor.chunks.options(num_returns="streaming").remote(str(gate))
    task_id = gen._task_id
    assert actorlib.get(next(gen), timeout=60).sum() == 0
    poll(lambda: runtime.streams.count(task_id) == 3, timeout=60)
    not_taken = [runtime.objects.get(item_id(task_id, i)).value.object_id for i in (1, 2)]
    actorlib.cancel(gen)
    gate.touch()
    with pytest.raises(TaskCancelledError):
        actorlib.get(next(gen), timeout=30)
    del gen
    poll(lambda: len(runtime.streams) == 0, timeout=30)  # its task ended (the last item came) and it went
    assert all(runtime.objects.get(item_id(task_id, i)) is None for i in range(4))
    poll(lambda: not any(in_store(object_id) for object_id in not_taken), timeout=30)
    poll(lambda: runtime.store.stats().objects <= stored_before, timeout=30)  # the late one too
    actorlib.kill(actor)


def in_store(object_id: bytes) -> bool:
    from actorlib._core import current

    try:
        return current().store.get(object_id) is not None
    except ObjectLostError:
        return False


def test_dynamic_generators_are_cancelled_through_their_one_ref(tmp_path):
    marker, gate = tmp_path / "marker", tmp_path / "gate"
    with pytest.warns(DeprecationWarning):
        ref = numbers_task.options(num_returns="dynamic").remote(str(marker), str(gate))
    assert isinstance(ref, actorlib.ObjectRef)  # as in Ray
    poll(lambda: marker.exists() and marker.read_text() == "yielded 2", timeout=60)
    actorlib.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    poll(lambda: marker.read_text() == "ended: Cancelled", timeout=30)


def test_cancel_refuses_what_is_not_a_ref_or_a_generator(tmp_path):
    from actorlib import DynamicObjectRefGenerator

    with pytest.raises(TypeError, match="takes an ObjectRef or an ObjectRefGenerator, got DynamicObjectRefGenerator"):
        actorlib.cancel(DynamicObjectRefGenerator([]))  # as in Ray (a TypeError)
    with pytest.raises(TypeError, match="got int"):
        actorlib.cancel(3)
