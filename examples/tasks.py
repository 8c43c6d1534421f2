"""Remote functions: submit, get, wait, options, resources, and tasks that submit tasks.

Run it: actorlib run examples/tasks.py   (or: python examples/tasks.py)
"""

import asyncio
import time

import actorlib


@actorlib.remote
def add(a, b):
    return a + b


@actorlib.remote(num_returns=2)
def divmod_task(a, b):
    return divmod(a, b)


@actorlib.remote
def slow(seconds):
    time.sleep(seconds)
    return seconds


@actorlib.remote
def tree_sum(values):
    """A task that submits tasks: workers are clients too."""
    if len(values) <= 2:
        return sum(values)
    mid = len(values) // 2
    left, right = tree_sum.remote(values[:mid]), tree_sum.remote(values[mid:])
    return actorlib.get(left) + actorlib.get(right)


@actorlib.remote
async def fetch_all(delays):
    """An async task: asyncio code, as written for Ray, runs as it is."""
    return await asyncio.gather(*[asyncio.sleep(d, result=d) for d in delays])


def main() -> None:
    actorlib.init(num_cpus=2, resources={"gpu_like": 1})

    # An ObjectRef passed as an argument is replaced by its value before the call.
    total = add.remote(add.remote(1, 2), 3)
    print("1 + 2 + 3 =", actorlib.get(total))

    quotient, remainder = divmod_task.remote(17, 5)
    print("divmod(17, 5) =", actorlib.get([quotient, remainder]))

    # wait() returns the first finished refs, in the order they were given.
    refs = [slow.remote(s) for s in (0.6, 0.0, 0.3)]
    ready, not_ready = actorlib.wait(refs, num_returns=2, timeout=10)
    print("first two done:", actorlib.get(ready), "still running:", len(not_ready))

    # Resources bound parallelism: one "gpu_like" unit means one task at a time.
    exclusive = slow.options(resources={"gpu_like": 1})
    started = time.monotonic()
    actorlib.get([exclusive.remote(0.2) for _ in range(3)])
    print(f"3 exclusive tasks took {time.monotonic() - started:.1f}s (one at a time)")

    started = time.monotonic()
    waited = actorlib.get(fetch_all.remote([0.2] * 5))
    print(f"an async task awaited {len(waited)} sleeps at once in {time.monotonic() - started:.1f}s")

    print("tree_sum(range(20)) =", actorlib.get(tree_sum.remote(list(range(20)))))
    print("cluster:", {k: v for k, v in actorlib.cluster_resources().items() if k in ("CPU", "gpu_like")})
    actorlib.shutdown()


if __name__ == "__main__":
    main()
