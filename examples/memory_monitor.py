"""The memory monitor: a task that would exhaust the node's memory is killed, not the node.

The node's threshold is set here just above the machine's current use (by default it is
95% of the machine's, or the container's, memory). A task allocates past it: the node
kills its worker, the task is retried after a pause, killed again, and `get` raises
OutOfMemoryError saying which task, on which node, the memory figures and what to do.
The cluster, and the other work on it, carry on.

Run it: python examples/memory_monitor.py
"""

import os
import time

import psutil

import actorlib
from actorlib.exceptions import OutOfMemoryError

CHUNK = 64 * 2**20


@actorlib.remote(max_retries=1)
def grow(limit):
    """Allocate (and touch) memory, 64 MiB at a time, up to ``limit`` bytes."""
    held = []
    while len(held) * CHUNK < limit:
        held.append(bytearray(CHUNK))
        held[-1][::4096] = b"\x01" * (CHUNK // 4096)
        time.sleep(0.02)
    return len(held)


@actorlib.remote
def small(x):
    return x * 2


def main() -> None:
    memory = psutil.virtual_memory()
    headroom = 2**30  # the threshold: 1 GiB above what the machine uses now
    os.environ["ACTORLIB_MEMORY_USAGE_THRESHOLD"] = str((memory.total - memory.available + headroom) / memory.total)
    os.environ["ACTORLIB_MEMORY_MONITOR_REFRESH"] = "0.1"  # seconds between readings (default 0.25)
    actorlib.init(num_cpus=2)  # the node reads its settings when it starts
    try:
        actorlib.get(grow.remote(3 * headroom))
    except OutOfMemoryError as error:
        print("OutOfMemoryError:", str(error)[:160], "...")
    print("the cluster goes on:", actorlib.get([small.remote(i) for i in range(3)]))
    actorlib.shutdown()
    print("memory monitor ok")


if __name__ == "__main__":
    main()
