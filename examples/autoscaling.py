"""Work that makes a cluster grow: run it on an autoscaling cluster with

    actorlib up examples/autoscaling.yaml --yes
    actorlib exec examples/autoscaling.yaml 'python examples/autoscaling.py'
    actorlib down examples/autoscaling.yaml --yes

Alone (``python examples/autoscaling.py``) it runs on a local cluster that does not scale: the
same code, the same answers, only fewer nodes.
"""

import time

import actorlib
from actorlib.autoscaler import request_resources


@actorlib.remote
def square(x: int) -> tuple[int, str]:
    time.sleep(0.5)  # long enough that a burst waits for CPUs, and nodes are added
    return x * x, actorlib.get_runtime_context().get_node_id()


def main() -> None:
    actorlib.init()
    scales = actorlib.cluster_resources().get("CPU", 0)
    request_resources(num_cpus=6)  # ask for room before the burst; the autoscaler adds nodes
    results = actorlib.get([square.remote(i) for i in range(12)])
    assert [value for value, _node in results] == [i * i for i in range(12)]
    nodes = {node for _value, node in results}
    print(f"12 squares on {len(nodes)} node(s); the cluster had {scales:g} CPUs when we started")
    request_resources(num_cpus=0)  # withdraw the request: idle nodes go after idle_timeout_s
    print("autoscaling ok")


if __name__ == "__main__":
    main()
