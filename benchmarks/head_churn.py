"""Head memory under churn: ``python -m benchmarks.head_churn [--actors N] [--groups N] [--real N]``.

actorlib only (it measures actorlib's head, not a comparison). A local cluster; this
process is the driver. It creates and ends, in rounds of 10,000 (1,000 for real actors):

- ``--actors`` actors whose constructor argument is 20 KB and that no node can host,
  so the head records each (spec and all), finds it infeasible and marks it DEAD;
- ``--groups`` placement groups of one small bundle, created (every 50th waited for
  until placed) and removed;
- ``--real`` actors that really start (``num_cpus=0``), answer one call and are killed,
  50 at a time.

It prints the head process's RSS (the head process also hosts the local node) after
a warm-up round and after each round, and the sizes of what the head then lists
(dead actors, removed groups): flat memory means the tables stop growing.
"""

from __future__ import annotations

import argparse
import json
import time

import psutil

import actorlib
from actorlib._core import current
from actorlib._wire import ListActors, ListPlacementGroups
from actorlib.util.placement_group import placement_group, remove_placement_group

ROUND = 10_000
REAL_ROUND = 1_000  # real actors are slower to churn: sampled more often
BLOB = b"x" * 20_000


@actorlib.remote(num_cpus=0)
class Short:
    def __init__(self, blob: bytes) -> None:
        self.size = len(blob)

    def ping(self) -> int:
        return self.size


def head_process() -> psutil.Process:
    return next(p for p in psutil.Process().children(recursive=True) if " ".join(p.cmdline()).startswith(("actorlib::head", "actorlib._head")))


def listed() -> tuple[int, int]:
    runtime = current()
    actors = runtime.call(runtime.head.request, lambda req: ListActors(req=req)).actors
    groups = runtime.call(runtime.head.request, lambda req: ListPlacementGroups(req=req)).groups
    return len(actors), len(groups)


def infeasible_actors(n: int) -> None:
    handles = [Short.options(resources={"nowhere": 1}).remote(BLOB) for _ in range(n)]
    with_calls = [h.ping.remote() for h in handles[-10:]]  # the last ones have reached the head when these fail
    for ref in with_calls:
        try:
            actorlib.get(ref, timeout=120)
        except actorlib.exceptions.ActorDiedError:
            pass
    del handles


def groups(n: int) -> None:
    for i in range(n):
        group = placement_group([{"CPU": 0.01}])
        if i % 50 == 0:
            actorlib.get(group.ready(), timeout=120)
        remove_placement_group(group)


def real_actors(n: int) -> None:
    for _ in range(0, n, 50):
        handles = [Short.remote(BLOB) for _ in range(50)]
        actorlib.get([h.ping.remote() for h in handles], timeout=300)
        for handle in handles:
            actorlib.kill(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=50_000)
    parser.add_argument("--real", type=int, default=0)
    args = parser.parse_args()
    actorlib.init(num_cpus=2)
    head = head_process()
    rows = []

    def sample(label: str, started: float) -> None:
        dead, removed = listed()
        row = {"after": label, "head_rss_mib": round(head.memory_info().rss / 2**20, 1), "listed_actors": dead,
               "listed_groups": removed, "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)

    plan = (("actors", infeasible_actors, args.actors, ROUND), ("groups", groups, args.groups, ROUND),
            ("real", real_actors, args.real, REAL_ROUND))  # fmt: skip
    for name, churn, total, size in plan:
        done = 0
        while done < total:
            started = time.perf_counter()
            step = min(size, total - done)
            churn(step)
            done += step
            sample(f"{done} {name}", started)
    actorlib.shutdown()


if __name__ == "__main__":
    main()
