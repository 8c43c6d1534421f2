"""Placement groups: where bundles go (pure), resource names, and the head's two-phase reservation."""

from __future__ import annotations

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from actorlib import _placement as pg
from actorlib._head._groups import PlacementGroups
from actorlib._wire import PlacementGroupSpec

shapes = st.dictionaries(st.sampled_from(["CPU", "GPU", "disk"]), st.integers(1, 4).map(float), min_size=1)
clusters = st.dictionaries(
    st.binary(min_size=2, max_size=2),
    st.fixed_dictionaries({"CPU": st.integers(0, 6).map(float), "GPU": st.integers(0, 2).map(float), "disk": st.integers(0, 3).map(float)}),
    min_size=1,
    max_size=5,
)


def load(bundles, placement):
    used: dict[bytes, dict[str, float]] = {}
    for bundle, node in zip(bundles, placement):
        for name, qty in bundle.items():
            used.setdefault(node, {})[name] = used.get(node, {}).get(name, 0.0) + qty
    return used


@given(st.lists(shapes, min_size=1, max_size=6), clusters, st.sampled_from(pg.STRATEGIES))
def test_a_placement_fits_the_nodes_and_keeps_its_strategy(bundles, nodes, strategy):
    placement = pg.place(bundles, strategy, nodes)
    if placement is None:
        if strategy == "STRICT_PACK":  # then no node holds the whole group
            need = load(bundles, [b"x"] * len(bundles))[b"x"]
            assert not any(all(free.get(n, 0) >= q for n, q in need.items()) for free in nodes.values())
        return
    assert len(placement) == len(bundles) and all(node in nodes for node in placement)
    for node, used in load(bundles, placement).items():
        assert all(nodes[node].get(name, 0.0) >= qty for name, qty in used.items())
    if strategy == "STRICT_PACK":
        assert len(set(placement)) == 1
    if strategy == "STRICT_SPREAD":
        assert len(set(placement)) == len(bundles)


@given(st.lists(shapes, min_size=1, max_size=6), clusters)
def test_pack_and_spread_place_whatever_a_strict_strategy_can(bundles, nodes):
    if pg.place(bundles, "STRICT_SPREAD", nodes) is not None or pg.place(bundles, "STRICT_PACK", nodes) is not None:
        assert pg.place(bundles, "PACK", nodes) is not None
        assert pg.place(bundles, "SPREAD", nodes) is not None


def test_pack_and_spread_look_past_a_greedy_dead_end():
    # Greedy SPREAD puts the CPU bundle on the emptiest node (a), leaving no CPU beside a's
    # only GPU for the other bundle; the search finds the one placement that works.
    nodes = {b"a": {"CPU": 2.0, "GPU": 1.0}, b"b": {"CPU": 2.0}}
    bundles = [{"CPU": 2.0}, {"GPU": 1.0, "CPU": 1.0}]
    for strategy in ("PACK", "SPREAD"):
        placement = pg.place(bundles, strategy, nodes)
        assert placement == [b"b", b"a"], strategy


def test_strict_spread_searches_for_a_matching():
    # A greedy choice (big bundle on the biggest node first is fine here, but the small bundle
    # must avoid the only node the other needs): backtracking finds it.
    nodes = {b"a": {"CPU": 4.0}, b"b": {"CPU": 1.0, "GPU": 1.0}}
    assert pg.place([{"GPU": 1.0}, {"CPU": 1.0}], "STRICT_SPREAD", nodes) == [b"b", b"a"]


def test_pack_prefers_one_node_and_spread_prefers_many():
    nodes = {b"a": {"CPU": 4.0}, b"b": {"CPU": 4.0}}
    assert len(set(pg.place([{"CPU": 1.0}] * 3, "PACK", nodes))) == 1
    assert len(set(pg.place([{"CPU": 1.0}] * 2, "SPREAD", nodes))) == 2


def test_fixed_bundles_stay_and_strict_spread_avoids_their_nodes():
    nodes = {b"a": {"CPU": 2.0}, b"b": {"CPU": 2.0}, b"c": {"CPU": 2.0}}
    placement = pg.place([{"CPU": 1.0}] * 2, "STRICT_SPREAD", nodes, [b"a", None])
    assert placement[0] == b"a" and placement[1] in (b"b", b"c")
    assert pg.place([{"CPU": 1.0}] * 2, "STRICT_PACK", nodes, [b"b", None]) == [b"b", b"b"]


def test_group_resource_names_follow_rays_scheme():
    offered = pg.bundle_resources("ab12", 1, {"CPU": 2.0, "GPU": 1.0})
    assert offered == {
        "bundle_group_1_ab12": 1000.0, "bundle_group_ab12": 1000.0, "CPU_group_1_ab12": 2.0,
        "CPU_group_ab12": 2.0, "GPU_group_1_ab12": 1.0, "GPU_group_ab12": 1.0,
    }  # fmt: skip
    asked = pg.group_shape({"CPU": 1.0, "GPU": 1.0}, "ab12", 1)
    assert all(offered[name] >= qty for name, qty in asked.items())
    assert set(pg.group_shape({"CPU": 1.0}, "ab12", -1)) == {"CPU_group_ab12", "bundle_group_ab12"}
    assert pg.gpus_of(asked) == 1.0 and pg.gpus_of({"GPU": 2.0}) == 2.0
    assert pg.of_group("CPU_group_1_ab12", "ab12") and not pg.of_group("CPU", "ab12")


# ---- the head's two-phase reservation, with in-process nodes -------------------------------


class FakeNode:
    """A node's bundle bookkeeping as the head sees it (the real LeaseManager is tested end to end)."""

    def __init__(self, name: bytes, cpus: float, refuse: bool = False) -> None:
        self.node_id = name
        self.total = {"CPU": cpus}
        self.available = {"CPU": cpus}
        self.refuse = refuse
        self.log: list[str] = []

    async def prepare_bundles(self, pg_id, bundles):
        self.log.append("prepare")
        if self.refuse:
            return "busy"
        for bundle in bundles.values():
            self.available["CPU"] -= bundle["CPU"]
        self.prepared = bundles
        return ""

    async def commit_bundles(self, pg_id):
        self.log.append("commit")
        return ""

    async def release_bundles(self, pg_id, indexes, reason):
        self.log.append("release")
        for bundle in self.prepared.values():
            self.available["CPU"] += bundle["CPU"]
        return ""


def spec(bundles, strategy):
    return PlacementGroupSpec(pg_id=b"g1", bundles=bundles, strategy=strategy)


async def test_a_refusal_rolls_back_every_prepared_node():
    nodes = [FakeNode(b"a", 1), FakeNode(b"b", 1, refuse=True)]
    groups = PlacementGroups(lambda: nodes)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(groups.run)
        assert groups.create(spec([{"CPU": 1.0}, {"CPU": 1.0}], "STRICT_SPREAD"), None) == ""
        with trio.fail_after(5):
            while "release" not in nodes[0].log:
                await trio.sleep(0.01)
        assert nodes[0].available == {"CPU": 1.0}  # given back
        assert "commit" not in nodes[0].log + nodes[1].log
        assert groups.get(b"g1").state == "PENDING" and "busy" in groups.get(b"g1").reason
        nodes[1].refuse = False
        with trio.fail_after(5):
            view = await groups.wait(b"g1")
        assert view.state == "CREATED" and sorted(view.nodes) == [b"a", b"b"]
        nursery.cancel_scope.cancel()


async def test_bundles_of_a_dead_node_are_placed_again():
    nodes = [FakeNode(b"a", 1), FakeNode(b"b", 1), FakeNode(b"c", 1)]
    groups = PlacementGroups(lambda: [n for n in nodes if n.node_id != b"gone"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(groups.run)
        groups.create(spec([{"CPU": 1.0}, {"CPU": 1.0}], "STRICT_SPREAD"), None)
        with trio.fail_after(5):
            first = await groups.wait(b"g1")
        lost = first.nodes[0]
        next(n for n in nodes if n.node_id == lost).node_id = b"gone"
        groups.node_died(lost)
        assert groups.get(b"g1").state == "RESCHEDULING"
        with trio.fail_after(5):
            again = await groups.wait(b"g1")
        assert again.nodes[1] == first.nodes[1] and again.nodes[0] not in (lost, first.nodes[1])
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("strategy", ["STRICT_PACK", "NEAR"])
def test_bad_specs_are_refused_by_the_head_too(strategy):
    groups = PlacementGroups(lambda: [])
    error = groups.create(spec([{"CPU": 1.0}] if strategy != "NEAR" else [{"CPU": 1.0}], strategy), None)
    assert (error == "") == (strategy == "STRICT_PACK")
