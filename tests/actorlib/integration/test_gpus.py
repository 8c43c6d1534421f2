"""Each GPU task or actor sees only its assigned devices (fake GPUs via CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import os

import pytest
import trio

import actorlib


@pytest.fixture
def gpu_cluster(fresh_cluster, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")  # the node detects two GPUs, ids 3 and 5
    return fresh_cluster(num_cpus=4)


@actorlib.remote
class Barrier:
    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.changed = trio.Event()

    async def arrive(self) -> None:
        self.arrived += 1
        self.changed.set()
        while self.arrived < self.parties:
            self.changed = trio.Event()
            await self.changed.wait()


@actorlib.remote(num_gpus=1)
def devices(barrier=None):
    if barrier is not None:  # both tasks hold their GPU at once
        actorlib.get(barrier.arrive.remote())
    return os.environ.get("CUDA_VISIBLE_DEVICES"), actorlib.get_gpu_ids()


@actorlib.remote
class Holder:
    def visible(self):
        context = actorlib.get_runtime_context()
        return os.environ.get("CUDA_VISIBLE_DEVICES"), actorlib.get_gpu_ids(), context.get_accelerator_ids()


def test_the_node_offers_the_detected_gpus(gpu_cluster):
    assert actorlib.cluster_resources()["GPU"] == 2


def test_tasks_running_at_once_see_different_gpus(gpu_cluster):
    barrier = Barrier.options(num_cpus=0).remote(2)
    (a, a_ids), (b, b_ids) = actorlib.get([devices.remote(barrier), devices.remote(barrier)], timeout=60)
    assert {a, b} == {"3", "5"}
    assert a_ids == [int(a)] and b_ids == [int(b)]


def test_a_task_without_gpus_sees_none(gpu_cluster):
    seen = actorlib.get(devices.options(num_gpus=0).remote())
    assert seen == ("", [])
    assert actorlib.get_gpu_ids() == []  # a driver holds no GPUs


def test_actors_hold_their_gpus_for_life_and_free_them_when_killed(gpu_cluster):
    first, second = Holder.options(num_gpus=1).remote(), Holder.options(num_gpus=1).remote()
    (a, a_ids, a_acc), (b, _, _) = actorlib.get([first.visible.remote(), second.visible.remote()], timeout=60)
    assert {a, b} == {"3", "5"}
    assert a_ids == [int(a)] and a_acc == {"GPU": [a]}
    third = Holder.options(num_gpus=1).remote()
    waiting = third.visible.remote()
    ready, _ = actorlib.wait([waiting], timeout=1.0)
    assert not ready  # no GPU is free until one of the others goes
    actorlib.kill(first)
    assert actorlib.get(waiting, timeout=60)[0] == a  # it got the GPU the killed actor held


def test_fractional_gpus_share_one_device_and_leave_the_other_whole(gpu_cluster):
    halves = [Holder.options(num_gpus=0.5).remote() for _ in range(2)]
    whole = Holder.options(num_gpus=1).remote()
    (h1, _, _), (h2, _, _), (w, _, _) = actorlib.get([h.visible.remote() for h in [*halves, whole]], timeout=60)
    assert h1 == h2 and w != h1 and {h1, w} == {"3", "5"}
