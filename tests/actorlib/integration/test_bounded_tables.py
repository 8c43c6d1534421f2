"""What the runtime keeps of finished work is bounded: dead actors are remembered as views,
idle scheduling queues are dropped."""

from __future__ import annotations

import os

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
