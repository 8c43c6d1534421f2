"""A supervising process for the orphan tests: ``python supervisor_program.py N [SECONDS | grandchildren]``.

Starts N process children, prints their pids as one JSON line, then serves
until killed. With SECONDS, each child is a shell run through the exec shim
that starts two ``sleep SECONDS`` (one in the background); with ``grandchildren``,
each is a Python child that starts a ``sleep`` of its own (the line then also
lists those, after the children's pids). It first runs work on a ``trio.to_thread`` worker, so that a
spawn wrongly tied to such a thread would die when the thread retires.
"""

from __future__ import annotations

import json
import sys

import psutil
import trio

import supervisors
from conftest import child_argv


async def main(count: int, seconds: str | None) -> None:
    await trio.to_thread.run_sync(lambda: None)

    def start() -> supervisors.ProcessChild:
        if seconds is None:
            return supervisors.ProcessChild(child_argv("serve"))
        if seconds == "grandchildren":
            return supervisors.ProcessChild(child_argv("grandchildren", "1"))
        return supervisors.ProcessChild.command(["sh", "-c", f"sleep {seconds} & sleep {seconds}"], group=True)

    specs = [supervisors.ChildSpec(id=f"c{i}", start=start) for i in range(count)]
    async with supervisors.open_supervisor(specs) as sup:
        pids = [c.pid for c in sup.snapshot().children]
        if seconds == "grandchildren":
            pids += [g.pid for pid in pids for g in psutil.Process(pid).children()]
        print(json.dumps(pids), flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
