"""``actorlib status``'s report, from cluster views (the live command is tested in multinode/)."""

from __future__ import annotations

from actorlib._cli._status import render
from actorlib._placement import bundle_resources, group_shape
from actorlib._wire import Demand, NodeView, PlacementGroupView


def view(node: bytes, total, available, demands=(), alive=True, head=False, silent=0.1) -> NodeView:
    return NodeView(
        node_id=node, address="", store="", hostname="h", ip="127.0.0.2", pid=1, alive=alive, total=total,
        available=available, session_dir="", is_head=head, demands=list(demands), silent=silent,
    )  # fmt: skip


def test_usage_pending_demands_and_groups_are_reported():
    group = bundle_resources("ab12", 0, {"CPU": 2.0})
    busy = {**group, "CPU_group_ab12": 1.0, "CPU_group_0_ab12": 1.0}
    nodes = [
        view(b"\x01" * 16, {"CPU": 4.0, **group}, {"CPU": 1.0, **busy}, [Demand({"CPU": 1.0}, 3, "task")], head=True),
        view(b"\x02" * 16, {"CPU": 2.0, "GPU": 1.0}, {"CPU": 2.0, "GPU": 0.0}, silent=2.34, demands=[
            Demand({"CPU": 1.0}, 2, "task"), Demand(group_shape({"CPU": 1.0}, "ab12", 0), 1, "actor"),
        ]),  # fmt: skip
        view(b"\x03" * 16, {"CPU": 8.0}, {"CPU": 8.0}, alive=False),
    ]
    pending = PlacementGroupView(
        pg_id=bytes.fromhex("cd34" * 4), bundles=[{"CPU": 1.0}] * 4, strategy="STRICT_SPREAD", state="PENDING",
        nodes=[b""] * 4, name="wide", reason="no set of nodes can ever hold its bundles",
    )  # fmt: skip
    report = render("127.0.0.1:6379", nodes, True, [pending])
    assert "Nodes: 1 healthy, 1 unresponsive, 1 dead" in report
    assert "unresponsive: 020202020202 (127.0.0.2), no heartbeat for 2.3 s" in report
    assert "CPU                           3 / 6  (2 reserved in placement groups, 1 of it in use)" in report
    assert "GPU                           1 / 1" in report
    assert "_group_" not in report  # group resources are folded into their plain names
    assert "5 x {CPU: 1} (task lease requests)" in report  # summed over nodes
    assert "1 x {CPU: 1} in placement group ab12 (actors)" in report
    assert "placement group cd34cd34cd34 'wide' STRICT_SPREAD [{CPU: 1}, {CPU: 1}, {CPU: 1}, {CPU: 1}] PENDING: no set" in report
    assert report.count("pending") == 2  # the per-node lines (-v)


def test_nothing_pending_says_so():
    report = render("h:1", [view(b"\x01" * 16, {"CPU": 1.0}, {"CPU": 1.0})], False)
    assert "Pending demands:\n  (none)" in report and "node 0101" not in report


async def test_the_head_reports_how_long_a_node_has_been_silent(autojump_clock):
    import trio

    from actorlib._head._nodes import RemoteNode

    node = RemoteNode(view(b"\x04" * 16, {"CPU": 1.0}, {"CPU": 1.0}), channel=None)  # type: ignore[arg-type]
    await trio.sleep(2.5)
    assert node.view().silent == 2.5
    node.beat({"CPU": 1.0}, 0)
    assert node.view().silent == 0.0
