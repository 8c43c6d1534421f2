"""Run a foreign program as a supervised process child: ``python -m supervisors._exec_shim [--group] -- argv``.

The shim reports READY once the program is spawned, turns a STOP request
into SIGTERM, exits with the program's status, and (through its parent
watchdog) kills the program's whole process group if the supervisor dies.
With ``--group`` a STOP sends SIGTERM to the whole process group (a shell
command and every process it started); the shim itself outlives that
SIGTERM so that it still reports the program's exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from ._link import connect_parent, die_with_group_on_parent_death


def main(argv: list[str]) -> int:
    group = argv[:1] == ["--group"]
    if group:
        argv = argv[1:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: python -m supervisors._exec_shim [--group] -- PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    link = connect_parent()
    if link.supervised:
        die_with_group_on_parent_death()  # its program and everything it started, too
    if group:
        # A handler, not SIG_IGN: the program must not inherit an ignored SIGTERM.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        program = subprocess.Popen(argv)
    except OSError as exc:
        link.report_failure(exc)
        print(f"cannot run {argv[0]!r}: {exc}", file=sys.stderr)
        return 127
    if group:
        link.on_stop(lambda reason: os.killpg(os.getpgrp(), signal.SIGTERM))
    else:
        link.on_stop(lambda reason: program.send_signal(signal.SIGTERM))
    link.ready()
    returncode = program.wait()
    if returncode < 0:
        signal.signal(-returncode, signal.SIG_DFL)
        signal.raise_signal(-returncode)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
