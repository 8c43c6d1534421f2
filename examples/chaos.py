"""Faults on purpose: a cluster on loopback addresses, and work that survives processes killed under it.

It starts a head (127.0.0.1) and a node (127.0.0.2) as real processes with
``actorlib.testing.Cluster``, then:

- runs 2,000 tasks while ``actorlib.testing.chaos`` kills a task worker every 200 ms
  (tasks are retried: every result is right);
- calls an actor while its process is killed three times (``max_restarts=-1`` brings it
  back, ``max_task_retries=-1`` retries the call that was running);
- asks ``actorlib chaos`` (the same injector on the command line) for one more kill, as JSON.

See docs/testing.md. Run it: ``python examples/chaos.py``.
"""

import json
import time

import actorlib
from actorlib.testing import Cluster
from actorlib.testing.chaos import Chaos
from actorlib.util.state import list_actors


@actorlib.remote(max_retries=-1)
def square(x: int) -> int:
    time.sleep(0.002)
    return x * x


@actorlib.remote(max_restarts=-1, max_task_retries=-1, num_cpus=0)
class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def incr(self) -> int:
        self.calls += 1
        return self.calls


def main() -> None:
    with Cluster(head_cpus=1) as cluster:
        cluster.add_node("127.0.0.2", num_cpus=2)
        cluster.connect()

        with Chaos("workers", interval=0.2, seed=7) as chaos:  # injects from a background thread
            results = actorlib.get([square.remote(i) for i in range(2000)], timeout=300)
        assert results == [i * i for i in range(2000)]
        print(f"2,000 tasks right while {chaos.count} task workers were killed")

        counter = Counter.remote()
        actorlib.get(counter.incr.remote(), timeout=60)
        with Chaos("actors", interval=0.3, max=3) as chaos:
            while chaos.report.ended is None:
                assert actorlib.get(counter.incr.remote(), timeout=60) >= 1  # retried, never lost
        actorlib.get(counter.incr.remote(), timeout=60)  # answered by the incarnation after the last kill
        (view,) = list_actors(filters=[("class_name", "=", "Counter")])
        assert view.num_restarts == 3 and view.state == "ALIVE"
        print(f"the actor was killed {chaos.count} times and restarted {view.num_restarts} times; every call answered")

        report = json.loads(cluster.cli("chaos", "--address", cluster.address, "--kill", "workers", "--max", "1", "--json"))
        print(f"actorlib chaos: {report['injections'][0]['action']} {report['injections'][0]['name']} pid {report['injections'][0]['pid']}")
    print("chaos ok")


if __name__ == "__main__":
    main()
