"""What the runtime keeps of finished work is bounded: dead actors are remembered as views,
idle scheduling queues are dropped."""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest

import actorlib
from actorlib._core import current
from actorlib._wire import ListActors

from .conftest import poll

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote(num_cpus=0)
class Brief:
    def pid(self) -> int:
        return os.getpid()


@actorlib.remote
def one() -> int:
    return 1


def listed_actors() -> dict:
    runtime = current()
    return {view.actor_id: view for view in runtime.call(runtime.head.request, lambda req: ListActors(req=req)).actors}


def test_a_dead_actor_is_listed_with_where_it_ran_and_why_it_died():
    actor = Brief.options(name="brief-listed").remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    actorlib.kill(actor)
    view = poll(lambda: (v := listed_actors().get(actor._actor_id)) is not None and v.state == "DEAD" and v, timeout=30)
    assert (view.class_name, view.name, view.pid, view.restarts) == ("Brief", "brief-listed", pid, 0)
    assert view.node_id == bytes.fromhex(actorlib.get_runtime_context().get_node_id())
    assert "actorlib.kill()" in view.cause
    with pytest.raises(ValueError):
        actorlib.get_actor("brief-listed")  # its name is free again


def test_queues_of_scheduling_keys_are_dropped_once_idle():
    runtime = current()
    shapes = [0.01 * (i + 1) for i in range(20)]  # twenty scheduling keys
    assert actorlib.get([one.options(num_cpus=cpus).remote() for cpus in shapes], timeout=60) == [1] * 20
    poll(lambda: not runtime.submitter._queues, timeout=30)  # leases returned, queues gone
    assert actorlib.get(one.options(num_cpus=0.01).remote(), timeout=60) == 1  # a key comes back: a new queue


@actorlib.remote(num_cpus=0, resources={"slot": 1})
def hold_slot(marker: str) -> int:
    deadline = time.monotonic() + 120
    while not os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.01)
    return 0


@actorlib.remote(num_cpus=0, resources={"slot": 1})
def queued(i: int) -> int:
    return i


def test_a_queued_task_holds_under_half_a_kilobyte_of_the_drivers_memory(tmp_path):
    """Issue 16: 100,000 queued tasks at most 0.5 KB of driver memory each. Measured with
    tracemalloc (bytes, not time): the TaskSpec, its result's table entry and ObjectRef, its
    pickled arguments and ids, and the list the caller keeps the refs in (640 B before the
    spec was slimmed: return-id tuple, Inline and a task id of its own per task)."""
    runtime = current()
    marker = tmp_path / "go"
    blocker = hold_slot.remote(str(marker))  # holds the cluster's only "slot": the rest queue
    count = 5_000
    queued.remote(-1)  # its function and kind are prepared before the measurement
    poll(lambda: sum(len(q.tasks) for q in list(runtime.submitter._queues.values())) >= 1, timeout=30)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = [queued.remote(i) for i in range(count)]
        poll(lambda: sum(len(q.tasks) for q in list(runtime.submitter._queues.values())) >= count + 1, timeout=60)
        per_task = (tracemalloc.get_traced_memory()[0] - before) / count
    finally:
        tracemalloc.stop()
        marker.touch()
    assert per_task <= 512, f"{per_task:.0f} B per queued task"
    assert actorlib.get(blocker, timeout=60) == 0
    assert actorlib.get(refs, timeout=120) == list(range(count))
