"""Work across the nodes of a cluster: resources, SPREAD, node affinity, placement groups, objects.

Run it against a running cluster (see docs/cluster.md)::

    actorlib start --head --port 6380
    actorlib start --address 127.0.0.1:6380 --node-ip-address 127.0.0.2 --resources '{"ssd": 1}'
    ACTORLIB_ADDRESS=auto python examples/cluster.py

or on its own, where it starts a one-node cluster in this process.
"""

import collections
import os

import numpy as np

import actorlib
from actorlib.util import placement_group, placement_group_table, remove_placement_group
from actorlib.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy


@actorlib.remote
def where() -> str:
    return actorlib.get_runtime_context().get_node_id()[:8]


@actorlib.remote
def make(mb: int) -> np.ndarray:
    return np.full(mb * 2**20, 7, dtype=np.uint8)


@actorlib.remote
def total(array: np.ndarray) -> tuple[int, str]:
    return int(array.sum(dtype=np.int64)), actorlib.get_runtime_context().get_node_id()[:8]


@actorlib.remote(num_cpus=0)
class Reporter:
    def node(self) -> str:
        return actorlib.get_runtime_context().get_node_id()[:8]


def main() -> None:
    if os.environ.get("ACTORLIB_ADDRESS"):
        actorlib.init()  # connects to $ACTORLIB_ADDRESS ("auto": the cluster running on this machine)
    else:
        actorlib.init(num_cpus=2)
    nodes = [n for n in actorlib.nodes() if n["Alive"]]
    print(f"{len(nodes)} node(s):")
    for node in nodes:
        print(f"  {node['NodeID'][:8]} at {node['NodeManagerAddress']}: {node['Resources']}")

    spread = collections.Counter(actorlib.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(8)]))
    print(f"SPREAD ran 8 tasks on {len(spread)} node(s)")

    last = nodes[-1]["NodeID"]
    pinned = NodeAffinitySchedulingStrategy(last, soft=False)
    assert actorlib.get(where.options(scheduling_strategy=pinned).remote()) == last[:8]

    # A 16 MB array made on the last node and summed on the first: node to node, not via the head.
    first = NodeAffinitySchedulingStrategy(nodes[0]["NodeID"], soft=False)
    array = make.options(scheduling_strategy=pinned).remote(16)
    summed, on = actorlib.get(total.options(scheduling_strategy=first).remote(array))
    assert summed == 7 * 16 * 2**20 and on == nodes[0]["NodeID"][:8]
    print(f"summed a 16 MB array from node {last[:8]} on node {on}")

    strategy = "STRICT_SPREAD" if len(nodes) > 1 else "PACK"
    pg = placement_group([{"CPU": 0.5}] * min(len(nodes), 2), strategy=strategy)
    actorlib.get(pg.ready())
    placed = placement_group_table(pg)["bundles_to_node_id"]
    reporters = [
        Reporter.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, index)).remote() for index in placed
    ]
    homes = actorlib.get([r.node.remote() for r in reporters])
    assert homes == [node[:8] for node in placed.values()]
    print(f"{strategy} placement group: bundles on {homes}")
    remove_placement_group(pg)
    actorlib.shutdown()
    print("cluster ok")


if __name__ == "__main__":
    main()
