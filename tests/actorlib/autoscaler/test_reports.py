"""The autoscaler's launches against the head's view as nodes report it: the head's real
registry and node handles, each node's heartbeat played by the test (no cluster)."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from actorlib._autoscaler._config import CLUSTER_LABEL, INSTANCE_LABEL, TYPE_LABEL, parse_config
from actorlib._autoscaler._providers import Instance
from actorlib._autoscaler._service import TICK, Autoscaler
from actorlib._head._nodes import RemoteNode
from actorlib._head._registry import Registry
from actorlib._wire import Demand, NodeView

CONFIG = """\
cluster_name: burst
max_workers: 3
idle_timeout_s: 60
available_node_types:
  head:
    resources: {CPU: 2}
  cpu:
    resources: {CPU: 2}
    max_workers: 3
"""


class Recorder:
    """A provider that starts nothing: the launches the autoscaler asked for."""

    name = "recorder"

    def __init__(self) -> None:
        self.created: list[str] = []

    async def create(self, node_type: str, instance_id: str) -> Instance:
        self.created.append(node_type)
        return Instance(instance_id, node_type)

    async def terminate(self, instance_id: str) -> None:
        pass

    async def list(self) -> list[Instance]:
        return []


def worker_node(index: int) -> RemoteNode:
    """A ``cpu`` node the autoscaler launched, as it registered (all of its 2 CPUs free)."""
    labels = {CLUSTER_LABEL: "burst", TYPE_LABEL: "cpu", INSTANCE_LABEL: f"burst-cpu-{index}"}
    view = NodeView(
        node_id=bytes([index]) * 16, address="", store="", hostname="h", ip=f"127.0.0.{index + 1}", pid=1, alive=True,
        total={"CPU": 2.0}, available={"CPU": 2.0}, session_dir="", labels=labels,
    )  # fmt: skip
    return RemoteNode(view, SimpleNamespace(closed=True))


def head_with(nodes: list[RemoteNode]) -> SimpleNamespace:
    registry = Registry()
    for node in nodes:
        registry.add(node)
    return SimpleNamespace(
        registry=registry, requested=[], job_demands=list, groups=SimpleNamespace(views=list),
        actors=SimpleNamespace(place_waiting=lambda: None, waiting_shapes=list),
    )  # fmt: skip


async def test_requests_that_moved_between_two_reports_launch_nothing(autojump_clock):
    """Regression (the burst test's third node): two requests queued on node A moved to node B
    (rebalance) and ran there. B's heartbeat said so (no CPU free) before A's next one did (its
    queue empty): that view counted them twice, waiting on A and running on B, and a node
    nothing needed was launched. Demand is acted on once every node reported after it was seen."""
    a, b = worker_node(1), worker_node(2)
    provider = Recorder()
    autoscaler = Autoscaler(parse_config(CONFIG), provider, head_with([a, b]))
    async with trio.open_nursery() as nursery:
        autoscaler._nursery = nursery
        waiting = [Demand({"CPU": 1.0}, 2, "task")]
        a.beat({"CPU": 0.0}, 2, demands=waiting)  # A: full, two more waiting
        await trio.sleep(TICK)
        b.beat({"CPU": 0.0}, 0)  # B: took A's two; A has not reported since
        autoscaler.tick()
        await trio.sleep(TICK)
        b.beat({"CPU": 0.0}, 0)
        autoscaler.tick()  # A is still to report
        await trio.sleep(TICK)
        a.beat({"CPU": 0.0}, 0)  # A's queue, as it has been since the move: empty
        autoscaler.tick()
        await trio.sleep(TICK)
        assert provider.created == [] and not autoscaler.launching
        # Demand that both nodes still report after it was first seen is real: one node for it.
        a.beat({"CPU": 0.0}, 2, demands=waiting)
        autoscaler.tick()
        await trio.sleep(TICK)
        assert provider.created == []  # not on that one view
        a.beat({"CPU": 0.0}, 2, demands=waiting)
        b.beat({"CPU": 0.0}, 0)
        autoscaler.tick()
        await trio.sleep(TICK)
        assert provider.created == ["cpu"]
        nursery.cancel_scope.cancel()


async def test_with_no_node_process_but_the_heads_demand_launches_at_once(autojump_clock):
    """The head's own node is in its process: its queue and its room are one view."""
    provider = Recorder()
    head = head_with([])
    head.job_demands = lambda: [{"CPU": 1.0}] * 3  # three job entrypoints wait for room
    autoscaler = Autoscaler(parse_config(CONFIG), provider, head)
    async with trio.open_nursery() as nursery:
        autoscaler._nursery = nursery
        autoscaler.tick()
        await trio.sleep(TICK)
        assert provider.created == ["cpu", "cpu"]
        nursery.cancel_scope.cancel()
