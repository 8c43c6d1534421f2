"""Where memory goes: `actorlib memory` (Ray's `ray memory`), and placement by locality.

A task runs on the node that holds its large arguments (one node here, so it simply
reads them zero-copy). The listing shows every object the cluster's processes hold
references to: its size, where it lives (the store, or inline in its owner), who
owns it, and what keeps it alive: a ref in the driver's code (LOCAL_REFERENCE), an
argument of a task still running (USED_BY_PENDING_TASK), a worker borrowing it.

Run it: python examples/memory.py
"""

import subprocess
import sys
import threading

import numpy as np

import actorlib
from actorlib.util import state


@actorlib.remote
def total(array, started, release):
    """Holds its argument (zero-copy, from the store) until told to finish."""
    actorlib.get(started.mark.remote())
    actorlib.get(release.wait.remote())
    return float(array.sum())


@actorlib.remote
class Flag:
    def __init__(self):
        self.event = threading.Event()

    def mark(self):
        self.event.set()

    def wait(self):
        self.event.wait()

    def is_set(self):
        return self.event.is_set()


def main() -> None:
    actorlib.init(num_cpus=2)
    cache = [actorlib.put(np.ones(1_000_000)) for _ in range(3)]  # 8 MB each: kept "by mistake"
    started, release = Flag.options(max_concurrency=2).remote(), Flag.options(max_concurrency=2).remote()
    running = total.remote(cache[0], started, release)
    actorlib.get(started.wait.remote())

    result = state.memory()
    rows = [row for node in result.nodes for row in node.references]
    print(f"{len(rows)} references, {sum(node.store_used for node in result.nodes) // 2**20} MiB in stores")
    for row in sorted(rows, key=lambda row: -row.size)[:3]:
        print(f"  {row.object_id} {row.size / 2**20:.1f} MiB {row.where} {row.reference} (pid {row.pid})")

    # The same from the terminal.
    address = actorlib.get_runtime_context().gcs_address
    subprocess.run([sys.executable, "-m", "actorlib", "memory", "--address", address, "--num-entries", "5"], check=True)

    actorlib.get(release.mark.remote())
    print("sum:", actorlib.get(running))
    cache.clear()  # the leak fixed: the store is empty again once the refs are gone
    actorlib.shutdown()
    print("memory ok")


if __name__ == "__main__":
    main()
