"""Placement groups across a head and two nodes: strategies, atomic reservation, ownership."""

from __future__ import annotations

import pytest

import actorlib
from actorlib.util import PlacementGroup, placement_group, placement_group_table, remove_placement_group
from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ..integration.conftest import poll, run_driver


@actorlib.remote(num_cpus=1)
def where() -> str:
    return actorlib.get_runtime_context().get_node_id()


@actorlib.remote(num_cpus=1)
class Located:
    def node(self) -> str:
        return actorlib.get_runtime_context().get_node_id()


def in_bundle(pg, index=-1):
    return PlacementGroupSchedulingStrategy(pg, index)


def free_cpus() -> float:
    return actorlib.available_resources().get("CPU", 0.0)


def nodes_of(pg) -> dict[int, str]:
    return placement_group_table(pg)["bundles_to_node_id"]


def test_strict_spread_puts_each_bundle_on_its_own_node_and_work_follows(cluster):
    pg = placement_group([{"CPU": 1}] * 3, strategy="STRICT_SPREAD")
    assert pg.wait(30)
    placed = nodes_of(pg)
    assert sorted(placed.values()) == sorted(cluster.node_ids().values())
    for index, node in placed.items():
        assert actorlib.get(where.options(scheduling_strategy=in_bundle(pg, index)).remote(), timeout=60) == node
    actor = Located.options(scheduling_strategy=in_bundle(pg, 2)).remote()
    assert actorlib.get(actor.node.remote(), timeout=60) == placed[2]
    remove_placement_group(pg)
    poll(lambda: free_cpus() == 4, timeout=30)


def test_strict_pack_needs_one_node_that_holds_everything(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")
    assert pg.wait(30)
    assert set(nodes_of(pg).values()) == {cluster.node_ids()["127.0.0.3"]}  # the only 2-CPU node
    remove_placement_group(pg)


def test_pack_spills_over_when_one_node_cannot_hold_it(cluster):
    pg = placement_group([{"ssd": 1}, {"gpu_like": 2}], strategy="PACK")
    assert pg.wait(30)
    ids = cluster.node_ids()
    assert nodes_of(pg) == {0: ids["127.0.0.2"], 1: ids["127.0.0.3"]}
    remove_placement_group(pg)


def test_spread_uses_different_nodes_when_it_can(cluster):
    pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="SPREAD")
    assert pg.wait(30)
    assert len(set(nodes_of(pg).values())) == 2
    remove_placement_group(pg)


def test_a_group_that_cannot_be_placed_whole_reserves_nothing(cluster):
    # Four bundles on three nodes: never, under STRICT_SPREAD. Nothing may be held meanwhile.
    pg = placement_group([{"CPU": 1}] * 4, strategy="STRICT_SPREAD")
    assert not pg.wait(1)
    assert placement_group_table(pg)["state"] == "PENDING"
    assert free_cpus() == 4
    assert actorlib.get(where.remote(), timeout=60)  # the cluster still runs other work
    report = status(cluster)
    assert "STRICT_SPREAD [{CPU: 1}, {CPU: 1}, {CPU: 1}, {CPU: 1}] PENDING: no set of nodes can ever hold" in report
    remove_placement_group(pg)


def status(cluster) -> str:
    env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}
    return cluster.cli("status", "--address", cluster.address, env=env).stdout


def test_status_aggregates_what_waits_for_resources(cluster):
    hog = Located.options(num_cpus=0, resources={"ssd": 1}).remote()
    actorlib.get(hog.node.remote(), timeout=60)
    waiting = [where.options(resources={"ssd": 1}).remote() for _ in range(3)]
    poll(lambda: "x {CPU: 1, ssd: 1} (task lease requests)" in status(cluster), timeout=30)
    actorlib.kill(hog)
    actorlib.get(waiting, timeout=60)
    poll(lambda: "Pending demands:\n  (none)" in status(cluster), timeout=30)


def test_a_waiting_group_is_placed_once_resources_free_up(cluster):
    hog = Located.options(num_cpus=2, resources={"gpu_like": 1}).remote()
    actorlib.get(hog.node.remote(), timeout=60)
    pg = placement_group([{"CPU": 2}], strategy="STRICT_PACK")
    assert not pg.wait(1)
    actorlib.kill(hog)
    assert pg.wait(30)
    assert nodes_of(pg) == {0: cluster.node_ids()["127.0.0.3"]}
    remove_placement_group(pg)


def test_a_group_dies_with_its_driver_unless_detached(cluster):
    code = """
        import sys, actorlib
        from actorlib.util import placement_group
        actorlib.init(address=sys.argv[1], namespace="pgs")
        pg = placement_group([{"CPU": 1}], name=sys.argv[2], lifetime=sys.argv[3] or None)
        assert pg.wait(30)
        actorlib.shutdown()
    """
    env = {"ACTORLIB_TOKEN_FILE": cluster.token_file}
    for name, lifetime in (("kept", "detached"), ("dropped", "")):
        finished = run_driver(code, cluster.address, name, lifetime, env=env)
        assert finished.returncode == 0, finished.stderr
    table = {row["name"]: row for row in placement_group_table().values()}
    dropped, kept = table["dropped"]["placement_group_id"], table["kept"]["placement_group_id"]
    poll(lambda: placement_group_table()[dropped]["state"] == "REMOVED", timeout=30)
    assert table["kept"]["state"] == "CREATED" and table["kept"]["is_detached"]
    poll(lambda: free_cpus() == 3, timeout=30)  # only the detached group holds a CPU
    remove_placement_group(PlacementGroup(bytes.fromhex(kept)))
    poll(lambda: free_cpus() == 4, timeout=30)
    assert placement_group_table()[kept]["state"] == "REMOVED"
