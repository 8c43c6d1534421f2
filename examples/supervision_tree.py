"""A two-level supervision tree with a crashing child, using only ``supervisors``.

    root (one_for_one)
    ├─ ticker           a Trio task that ticks forever
    └─ workers (rest_for_one, at most 2 restarts in 10 s)
       ├─ flaky         an OS process that crashes 0.3 s after each start
       └─ steady        an OS process that depends on flaky

``flaky`` keeps crashing, so ``workers`` restarts it (and ``steady`` after
it) until its intensity is exceeded; then ``workers`` escalates and ``root``
restarts the whole subtree. The snapshot shows the restarts and last exits.

Run it: python examples/supervision_tree.py
"""

from __future__ import annotations

import sys

import msgspec
import trio

import supervisors as sv

CRASHING = "import time, supervisors; supervisors.connect_parent().ready(); time.sleep(0.3); raise SystemExit(3)"
SERVING = "import time, supervisors; supervisors.connect_parent().ready(); time.sleep(3600)"


def python(code: str) -> sv.ProcessChild:
    return sv.ProcessChild([sys.executable, "-c", code])


async def tick() -> None:
    while True:
        await trio.sleep(0.5)


def render(node: sv.ChildInfo, depth: int = 0) -> None:
    detail = f"pid={node.pid} " if node.pid else ""
    detail += f"restarts={node.restarts}"
    if node.last_exit:
        detail += f" last exit: {node.last_exit.reason}"
    print(f"{'  ' * depth}{node.id:<10} {node.kind:<10} {node.state:<10} {detail}")
    for child in node.children:
        render(child, depth + 1)


async def main() -> None:
    workers = sv.supervisor_spec(
        "workers",
        [
            sv.ChildSpec(id="flaky", start=lambda: python(CRASHING)),
            sv.ChildSpec(id="steady", start=lambda: python(SERVING)),
        ],
        strategy="rest_for_one",
        intensity=sv.Intensity(max_restarts=2, within=10),
        backoff=sv.Backoff(initial=0.1, jitter=0),
    )
    ticker = sv.ChildSpec(id="ticker", start=lambda: sv.TaskChild(tick))
    events: list[str] = []
    root_intensity = sv.Intensity(max_restarts=3, within=60)
    on_event = lambda e: events.append(f"{e.type} {e.path}")  # noqa: E731
    async with sv.open_supervisor([ticker, workers], id="root", intensity=root_intensity, on_event=on_event) as root:
        with trio.fail_after(30):
            while "restarting root/workers" not in events:
                await trio.sleep(0.05)
            while root.snapshot().children[1].state != "running":
                await trio.sleep(0.05)
        snapshot = root.snapshot()
    print("\n".join(events))
    print()
    render(snapshot)
    print()
    print(msgspec.json.format(msgspec.json.encode(snapshot.children[1].last_exit)).decode())


if __name__ == "__main__":
    trio.run(main)
