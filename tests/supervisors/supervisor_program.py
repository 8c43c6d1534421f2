"""A supervising process for the orphan tests: ``python supervisor_program.py N``.

Starts N process children, prints their pids as one JSON line, then serves
until killed. It first runs work on a ``trio.to_thread`` worker, so that a
spawn wrongly tied to such a thread would die when the thread retires.
"""

from __future__ import annotations

import json
import sys

import trio

import supervisors
from conftest import child_argv


async def main(count: int) -> None:
    await trio.to_thread.run_sync(lambda: None)
    specs = [
        supervisors.ChildSpec(id=f"c{i}", start=lambda: supervisors.ProcessChild(child_argv("serve")))
        for i in range(count)
    ]
    async with supervisors.open_supervisor(specs) as sup:
        pids = [c.pid for c in sup.snapshot().children]
        print(json.dumps(pids), flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
