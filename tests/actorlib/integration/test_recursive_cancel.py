"""cancel(recursive=...): the tasks and actor calls a cancelled task or actor call submitted
are cancelled with it (Ray's default), or left to run; and a task waiting on a stream lends its
CPUs like one in get(). Before, a cancelled actor call's tasks, and any actor call submitted by
a cancelled task or call, ran on."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

import actorlib
from actorlib.exceptions import TaskCancelledError

from .conftest import poll


@actorlib.remote
def child(marker: str, gate: str) -> str:
    """Runs until ``gate`` exists; records how it ended in ``marker``."""
    Path(marker).write_text("started")
    deadline = time.monotonic() + 60
    try:
        while not os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.01)
    except BaseException:
        Path(marker).write_text("cancelled")
        raise
    Path(marker).write_text("finished")
    return "done"


@actorlib.remote
def parent(marker: str, gate: str) -> str:
    return actorlib.get(child.options(num_cpus=0).remote(marker, gate))  # waits on its child


@pytest.mark.parametrize("recursive", [True, False])
def test_cancelling_a_task_cancels_the_tasks_it_submitted_unless_told_not_to(cluster, tmp_path, recursive):
    marker, gate = tmp_path / "child", tmp_path / "gate"
    ref = parent.remote(str(marker), str(gate))
    poll(lambda: marker.exists() and marker.read_text() == "started", timeout=30)
    actorlib.cancel(ref, recursive=recursive)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    if recursive:
        poll(lambda: marker.read_text() == "cancelled", timeout=30)
    else:
        gate.touch()  # the child was left running: it finishes
        poll(lambda: marker.read_text() == "finished", timeout=30)


class _Parent:
    """An actor whose call waits on a child task, as ``parent`` does."""

    def run(self, marker: str, gate: str) -> str:
        return actorlib.get(child.options(num_cpus=0).remote(marker, gate))


class _AsyncParent:
    async def run(self, marker: str, gate: str) -> str:
        return await child.options(num_cpus=0).remote(marker, gate)


class _TrioParent(_AsyncParent):
    __actorlib_event_loop__ = "trio"


PARENTS = {
    "sync": actorlib.remote(num_cpus=0)(_Parent),
    "threaded": actorlib.remote(num_cpus=0, max_concurrency=2)(_Parent),
    "asyncio": actorlib.remote(num_cpus=0)(_AsyncParent),
    "trio": actorlib.remote(num_cpus=0)(_TrioParent),
}


@pytest.mark.parametrize("recursive", [True, False])
@pytest.mark.parametrize("kind", list(PARENTS))
def test_cancelling_an_actor_call_cancels_the_tasks_it_submitted_unless_told_not_to(cluster, tmp_path, kind, recursive):
    marker, gate = tmp_path / "child", tmp_path / "gate"
    actor = PARENTS[kind].remote()
    ref = actor.run.remote(str(marker), str(gate))
    poll(lambda: marker.exists() and marker.read_text() == "started", timeout=30)
    actorlib.cancel(ref, recursive=recursive)
    if recursive:
        poll(lambda: marker.read_text() == "cancelled", timeout=30)
    else:
        gate.touch()  # the child was left running: it finishes
        poll(lambda: marker.read_text() == "finished", timeout=30)
    # The call was cancelled (a running sync method goes on, and returns what its child did,
    # but its caller gets TaskCancelledError, as in Ray).
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    actorlib.kill(actor)


@actorlib.remote(num_cpus=0)
class Napper:
    """An async actor whose ``nap`` waits for a gate; records in a file how each nap ended."""

    async def nap(self, marker: str, gate: str) -> str:
        Path(marker).write_text("started")
        try:
            while not os.path.exists(gate):
                await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            Path(marker).write_text("cancelled")
            raise
        Path(marker).write_text("finished")
        return "napped"


@actorlib.remote
def calls_a_napper(napper, marker: str, gate: str) -> str:
    return actorlib.get(napper.nap.remote(marker, gate))


@actorlib.remote(num_cpus=0)
class CallsANapper:
    def run(self, napper, marker: str, gate: str) -> str:
        return actorlib.get(napper.nap.remote(marker, gate))


@pytest.mark.parametrize("recursive", [True, False])
@pytest.mark.parametrize("parent_kind", ["task", "actor call"])
def test_cancelling_recursively_reaches_the_actor_calls_submitted(cluster, tmp_path, parent_kind, recursive):
    # As in Ray 2.60: the child actor call's coroutine is cancelled.
    marker, gate = tmp_path / "nap", tmp_path / "gate"
    napper = Napper.remote()
    caller = CallsANapper.remote() if parent_kind == "actor call" else None
    submit = caller.run.remote if caller is not None else calls_a_napper.remote
    ref = submit(napper, str(marker), str(gate))
    poll(lambda: marker.exists() and marker.read_text() == "started", timeout=30)
    actorlib.cancel(ref, recursive=recursive)
    if recursive:
        poll(lambda: marker.read_text() == "cancelled", timeout=30)
    else:
        gate.touch()
        poll(lambda: marker.read_text() == "finished", timeout=30)
    for actor in (napper, caller):
        if actor is not None:
            actorlib.kill(actor)


@actorlib.remote(num_returns="streaming")
def numbers(n: int):
    yield from range(n)


@actorlib.remote
def total_of_stream(n: int) -> int:
    return sum(actorlib.get(ref) for ref in numbers.remote(n))


def test_a_task_iterating_a_stream_lends_its_cpu_to_the_producer(fresh_cluster):
    fresh_cluster(num_cpus=1)  # the consumer holds the only CPU while it waits for items
    assert actorlib.get(total_of_stream.remote(5), timeout=30) == 10
