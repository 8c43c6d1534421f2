"""`actorlib status`'s autoscaler part, rendered without a cluster."""

from __future__ import annotations

import time

from actorlib._cli._status import render
from actorlib._wire import AutoscalerView, LaunchView, NodeView


def node(node_id: bytes, ip: str, alive: bool = True, draining: bool = False) -> NodeView:
    return NodeView(
        node_id=node_id, address="", store="", hostname="h", ip=ip, pid=1, alive=alive, total={"CPU": 2.0},
        available={"CPU": 2.0}, session_dir="", draining=draining,
    )  # fmt: skip


def test_launches_failures_drains_and_stopped_nodes_are_shown():
    now = time.time()
    view = AutoscalerView(
        cluster_name="demo", provider="local", workers={"cpu": 2, "gpu": 0}, max_workers=4,
        launching=[LaunchView(instance_id="demo-cpu-1", node_type="cpu", state="launching", since=now - 3)],
        failed=[LaunchView(instance_id="demo-gpu-2", node_type="gpu", state="failed", since=now - 5, error="exit code 7: no capacity", retry_in=2.5)],
        draining=[b"\x01" * 16], requested=[{"CPU": 1.0}], infeasible=[{"unicorn": 1.0}],
    )  # fmt: skip
    nodes = [node(b"\x00" * 16, "127.0.0.1"), node(b"\x01" * 16, "127.0.0.3", draining=True), node(b"\x02" * 16, "127.0.0.4", alive=False, draining=True)]
    text = render("127.0.0.1:6379", nodes, False, [], view)
    assert "Nodes: 2 healthy, 0 unresponsive, 0 dead, 1 stopped by the autoscaler" in text
    assert "Autoscaler (local provider, cluster 'demo'): workers 2 cpu, 0 gpu (max 4)" in text
    assert "Pending launches:\n  cpu demo-cpu-1, for 3s" in text
    assert "gpu demo-gpu-2, 5s ago: exit code 7: no capacity; gpu is tried again in 2.5s" in text
    assert "Draining (taking no new work, stopped once idle):\n  node 010101010101 (127.0.0.3)" in text
    assert "Requested (request_resources): {CPU: 1}" in text
    assert "Infeasible (no node type can hold these):\n  {unicorn: 1}" in text


def test_no_autoscaler_no_section():
    assert "Autoscaler" not in render("h", [node(b"\x00" * 16, "127.0.0.1")], False, [], None)
