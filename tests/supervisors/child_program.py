"""A process child for the supervisors tests: ``python child_program.py MODE [ARG]``.

Modes:
  serve            READY, then run until stopped
  crash SECONDS    READY, then raise RuntimeError after SECONDS
  exit CODE        READY, then exit with CODE at once
  sys-exit CODE    READY, then sys.exit(CODE) from inside a nursery
  ignore-stop      READY, then ignore STOP and SIGTERM forever (needs SIGKILL)
  no-ready         never send READY
  fail-start       raise before READY
  grandchildren N  start N `sleep` grandchildren, print their pids, READY, serve
  counter PATH     append a line to PATH at each start, then crash at once
  big-ready N      READY carrying an N-character value (many reads of the control socket), serve
  slow-exit PATH   READY, serve; once stopped, take 1 s to exit (an atexit handler writing
                   "exiting", then "done", to PATH)
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time

import trio

import supervisors


async def main(link: supervisors.ParentLink, mode: str, arg: str) -> None:
    if mode == "fail-start":
        raise ValueError("cannot start: bad config")
    if mode == "no-ready":
        await trio.sleep_forever()
    if mode == "counter":
        with open(arg, "a") as f:
            f.write(f"{os.getpid()}\n")
        raise RuntimeError("crash at start")
    if mode == "grandchildren":
        procs = [subprocess.Popen(["sleep", "1000"]) for _ in range(int(arg))]
        print(" ".join(str(p.pid) for p in procs), flush=True)
    if mode == "slow-exit":
        atexit.register(_slow_exit, arg)
    link.ready({"blob": "x" * int(arg)} if mode == "big-ready" else None)
    if mode == "crash":
        await trio.sleep(float(arg))
        raise RuntimeError("boom")
    if mode == "exit":
        sys.stdout.flush()
        os._exit(int(arg))
    if mode == "sys-exit":
        async with trio.open_nursery():
            sys.exit(int(arg))
    await trio.sleep_forever()


def _slow_exit(path: str) -> None:
    with open(path, "a") as f:
        f.write("exiting\n")
    time.sleep(1.0)
    with open(path, "a") as f:
        f.write("done\n")


def ignore_everything() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    link = supervisors.connect_parent()
    link.on_stop(lambda reason: None)
    link.ready()
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "ignore-stop":
        ignore_everything()
    supervisors.run_child(main, mode, sys.argv[2] if len(sys.argv) > 2 else "")


def run_mode(mode: str, arg: str = "") -> None:
    """Entry point for forked children (``child_program:run_mode``)."""
    if mode == "ignore-stop":
        ignore_everything()
    supervisors.run_child(main, mode, arg)
