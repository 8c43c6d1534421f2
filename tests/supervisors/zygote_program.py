"""A supervising process with a zygote, for the zygote tests: ``python zygote_program.py SCENARIO [N]``.

basic     start 3 serving + 1 crashing forked child; wait for the restart;
          terminate one; print a JSON report; exit
serve N   start N serving forked children; print {"pids": [...], "zygote": pid}; serve until killed
traced N  start and stop N forked children one after another under tracemalloc; print
          {"started": N, "peak": bytes allocated at once beyond what stayed allocated}
families N  the same, each child with a `sleep` grandchild; also print {"grandchildren": [...]}
"""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

import psutil
import trio

import supervisors

TARGET = "child_program:run_mode"


def forked(zygote: supervisors.Zygote, *args: str) -> supervisors.ChildSpec:
    name = f"{args[0]}-{forked.count}"
    forked.count += 1
    return supervisors.ChildSpec(
        id=name, start=lambda: supervisors.ForkedChild(zygote, TARGET, args=list(args), stdout=subprocess.PIPE)
    )


forked.count = 0  # type: ignore[attr-defined]


async def basic(zygote: supervisors.Zygote) -> None:
    specs = [forked(zygote, "serve") for _ in range(3)] + [forked(zygote, "crash", "0.2")]
    async with supervisors.open_supervisor(specs, backoff=None) as sup:
        first = [c.pid for c in sup.snapshot().children]
        with trio.fail_after(10):
            while sup.snapshot().children[3].restarts < 1 or sup.snapshot().children[3].state != "running":
                await trio.sleep(0.01)
        crashed = sup.snapshot().children[3]
        terminated = await sup.terminate_child(sup.snapshot().children[0].id)
        report = {
            "first": first,
            "restarted_reason": crashed.last_exit.reason,
            "restarted_pid": crashed.pid,
            "terminated": [terminated.kind.value, terminated.reason],
        }
    print(json.dumps(report), flush=True)


async def serve(zygote: supervisors.Zygote, count: int, mode: str = "serve") -> None:
    specs = [forked(zygote, *(("grandchildren", "1") if mode == "families" else ("serve",))) for _ in range(count)]
    async with supervisors.open_supervisor(specs) as sup:
        pids = [c.pid for c in sup.snapshot().children]
        grandchildren = [g.pid for pid in pids for g in psutil.Process(pid).children()]
        print(json.dumps({"pids": pids, "zygote": zygote.pid, "grandchildren": grandchildren}), flush=True)
        await trio.sleep_forever()


async def traced(zygote: supervisors.Zygote, count: int) -> None:
    specs = [forked(zygote, "serve")]
    async with supervisors.open_supervisor(specs) as sup:  # warm: the first spawn's one-off allocations
        await sup.terminate_child(sup.snapshot().children[0].id)
        tracemalloc.start()
        started = 0
        for _ in range(count):
            child_id = await sup.start_child(forked(zygote, "serve"))
            started += 1
            await sup.terminate_child(child_id)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(json.dumps({"started": started, "peak": peak - current}), flush=True)


async def main(zygote: supervisors.Zygote, scenario: str, args: list[str]) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(zygote.run)
        if scenario == "basic":
            await basic(zygote)
        elif scenario == "traced":
            await traced(zygote, int(args[0]))
        else:
            await serve(zygote, int(args[0]), scenario)
        nursery.cancel_scope.cancel()


if __name__ == "__main__":
    zygote = supervisors.Zygote.fork(preload=["trio", "supervisors", "child_program"])
    try:
        trio.run(main, zygote, sys.argv[1], sys.argv[2:])
    finally:
        zygote.close()
