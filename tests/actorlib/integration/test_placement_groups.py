"""Placement groups on one node: the API, validation, bundles as resources, removal."""

from __future__ import annotations

import os

import pytest

import actorlib
from actorlib.exceptions import ActorDiedError, TaskUnschedulableError
from actorlib.util import (
    PlacementGroup,
    get_current_placement_group,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)
from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from .conftest import poll


def in_bundle(pg, index=-1):
    return PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_bundle_index=index)


@actorlib.remote(num_cpus=1)
def current_group():
    group = get_current_placement_group()
    return group.id if group is not None else None


@actorlib.remote
class Member:
    def group(self):
        group = get_current_placement_group()
        return group.id if group is not None else None

    def gpus(self):
        return os.environ.get("CUDA_VISIBLE_DEVICES"), actorlib.get_gpu_ids()


@pytest.fixture
def node(fresh_cluster, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,7")
    return fresh_cluster(num_cpus=4, resources={"disk": 2})


def free(name):
    return actorlib.available_resources().get(name, 0.0)


@pytest.mark.parametrize(
    "bundles, message",
    [
        ([], "non-empty list"),
        ([{}], "bundle 0 is empty"),
        ([{"CPU": 1}, {"CPU": -1}], "bundle 1: CPU must be a finite non-negative number"),
        ([{"CPU": 0}], "bundle 0 is empty"),
        ([{"CPU_group_0_ab": 1}], "placement group resource"),
        ("CPU", "non-empty list"),
    ],
)
def test_malformed_bundles_are_refused_naming_the_problem(cluster, bundles, message):
    with pytest.raises((ValueError, TypeError), match=message):
        placement_group(bundles)


def test_unknown_strategy_and_lifetime_are_refused(cluster):
    with pytest.raises(ValueError, match="strategy must be one of PACK, SPREAD, STRICT_PACK, STRICT_SPREAD"):
        placement_group([{"CPU": 1}], strategy="TIGHT")
    with pytest.raises(ValueError, match="lifetime"):
        placement_group([{"CPU": 1}], lifetime="forever")


def test_bundles_become_resources_and_come_back_on_removal(node):
    pg = placement_group([{"CPU": 1}, {"CPU": 2, "disk": 1}], strategy="PACK", name="web")
    assert actorlib.get(pg.ready(), timeout=30) == pg
    assert pg.wait(5)
    assert free("CPU_group_1_" + pg.id.hex()) == 2 and free("disk_group_" + pg.id.hex()) == 1
    poll(lambda: free("CPU") == 1 and free("disk") == 1)  # 3 CPUs and a disk set aside
    row = placement_group_table(pg)
    assert row["state"] == "CREATED" and row["bundles"] == {0: {"CPU": 1.0}, 1: {"CPU": 2.0, "disk": 1.0}}
    assert set(row["bundles_to_node_id"].values()) == {actorlib.get_runtime_context().get_node_id()}
    assert get_placement_group("web") == pg
    with pytest.raises(ValueError, match="already exists"):
        placement_group([{"CPU": 1}], name="web")
    remove_placement_group(pg)
    poll(lambda: free("CPU") == 4 and free("disk") == 2)
    assert not any(pg.id.hex() in name for name in actorlib.cluster_resources())
    assert placement_group_table(pg)["state"] == "REMOVED"
    with pytest.raises(ValueError, match="no placement group named 'web'"):
        get_placement_group("web")


def test_tasks_and_actors_run_in_their_bundle(node):
    pg = placement_group([{"CPU": 1}, {"CPU": 1, "GPU": 1}])
    actorlib.get(pg.ready(), timeout=30)
    assert actorlib.get(current_group.options(scheduling_strategy=in_bundle(pg, 0)).remote(), timeout=30) == pg.id
    assert actorlib.get(current_group.remote(), timeout=30) is None
    member = Member.options(num_gpus=1, scheduling_strategy=in_bundle(pg, 1)).remote()
    assert actorlib.get(member.group.remote(), timeout=30) == pg.id
    visible, ids = actorlib.get(member.gpus.remote(), timeout=30)
    assert visible in ("6", "7") and ids == [int(visible)]
    remove_placement_group(pg)


@actorlib.remote(num_cpus=0)
def child_group():
    return actorlib.get(current_group.options(num_cpus=0).remote(), timeout=30)


@actorlib.remote(num_cpus=1)
def where_children_run():
    opt_out = PlacementGroupSchedulingStrategy(placement_group=None)
    member = Member.options(num_cpus=0).remote()
    return {
        "child": actorlib.get(current_group.remote(), timeout=30),
        "grandchild": actorlib.get(child_group.remote(), timeout=30),
        "actor": actorlib.get(member.group.remote(), timeout=30),
        "opted out": actorlib.get(current_group.options(scheduling_strategy=opt_out).remote(), timeout=30),
        "DEFAULT": actorlib.get(current_group.options(scheduling_strategy="DEFAULT").remote(), timeout=30),
    }


@actorlib.remote(num_cpus=0)
class Spawner:
    def child_group(self):
        return actorlib.get(current_group.remote(), timeout=30)


def test_captured_child_tasks_and_actors_run_in_the_parents_group(node):
    pg = placement_group([{"CPU": 2}])
    actorlib.get(pg.ready(), timeout=30)
    captured = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_capture_child_tasks=True)
    seen = actorlib.get(where_children_run.options(scheduling_strategy=captured).remote(), timeout=60)
    assert seen == {"child": pg.id, "grandchild": pg.id, "actor": pg.id, "opted out": None, "DEFAULT": None}
    spawner = Spawner.options(scheduling_strategy=captured).remote()
    assert actorlib.get(spawner.child_group.remote(), timeout=30) == pg.id
    # Without capture (Ray's default) a task's children run outside its group.
    seen = actorlib.get(where_children_run.options(scheduling_strategy=in_bundle(pg)).remote(), timeout=60)
    assert set(seen.values()) == {None}
    actorlib.kill(spawner)
    remove_placement_group(pg)


def test_captured_children_are_bounded_by_the_bundle(node):
    pg = placement_group([{"CPU": 1}])
    actorlib.get(pg.ready(), timeout=30)
    captured = PlacementGroupSchedulingStrategy(placement_group=pg, placement_group_capture_child_tasks=True)
    spawner = Spawner.options(num_cpus=1, scheduling_strategy=captured).remote()
    child = spawner.child_group.remote()  # its 1-CPU child waits: the actor holds the bundle's CPU
    ready, _ = actorlib.wait([child], timeout=1.0)
    assert not ready
    actorlib.kill(spawner)
    with pytest.raises(ActorDiedError):
        actorlib.get(child, timeout=30)
    remove_placement_group(pg)


def test_a_bundle_bounds_what_runs_in_it(node):
    pg = placement_group([{"CPU": 1}])
    actorlib.get(pg.ready(), timeout=30)
    holder = Member.options(num_cpus=1, scheduling_strategy=in_bundle(pg, 0)).remote()
    actorlib.get(holder.group.remote(), timeout=30)
    waiting = current_group.options(scheduling_strategy=in_bundle(pg, 0)).remote()
    ready, _ = actorlib.wait([waiting], timeout=1.0)
    assert not ready  # the bundle's only CPU is the actor's, though the node has 3 more
    actorlib.kill(holder)
    assert actorlib.get(waiting, timeout=30) == pg.id
    remove_placement_group(pg)


def test_a_group_waits_for_resources_whole_never_half(node):
    hog = Member.options(num_cpus=3).remote()
    actorlib.get(hog.group.remote(), timeout=30)
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
    assert not pg.wait(1)
    assert placement_group_table(pg)["state"] == "PENDING"
    assert free("CPU") == 1  # nothing reserved for a group that does not fit whole
    actorlib.kill(hog)
    assert pg.wait(30)
    remove_placement_group(pg)


def test_an_infeasible_group_stays_pending_and_says_why(node):
    pg = placement_group([{"CPU": 8}])
    assert not pg.wait(0.5)
    poll(lambda: "can ever hold" in placement_group_table(pg)["stats"]["scheduling_state"])
    remove_placement_group(pg)


def test_removal_kills_what_runs_in_the_group_and_refuses_new_work(node):
    pg = placement_group([{"CPU": 1}])
    actorlib.get(pg.ready(), timeout=30)
    member = Member.options(scheduling_strategy=in_bundle(pg, 0)).remote()
    actorlib.get(member.group.remote(), timeout=30)
    remove_placement_group(pg)
    with pytest.raises(ActorDiedError):
        poll(lambda: actorlib.get(member.group.remote(), timeout=30) and False, timeout=30)
    with pytest.raises(TaskUnschedulableError, match="was removed"):
        actorlib.get(current_group.options(scheduling_strategy=in_bundle(pg, 0)).remote(), timeout=30)
    late = Member.options(scheduling_strategy=in_bundle(pg)).remote()
    with pytest.raises(ActorDiedError, match="placement group"):
        actorlib.get(late.group.remote(), timeout=30)


def test_bundle_index_out_of_range_is_refused_at_options(node):
    pg = placement_group([{"CPU": 1}])
    with pytest.raises(ValueError, match="placement_group_bundle_index must be -1 .* or in 0..0, got 1"):
        current_group.options(scheduling_strategy=in_bundle(pg, 1))
    remove_placement_group(pg)


def test_a_handle_survives_pickling(node):
    import cloudpickle

    pg = placement_group([{"CPU": 1}], strategy="SPREAD")
    clone = cloudpickle.loads(cloudpickle.dumps(pg))
    assert isinstance(clone, PlacementGroup) and clone == pg and clone.bundle_specs == [{"CPU": 1.0}]
    remove_placement_group(pg)
