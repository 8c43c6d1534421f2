"""Supervision groups: OTP strategies across actors (beyond Ray).

A parser and a writer depend on each other: if either crashes, both restart
(one_for_all). Crash them too often and the group gives up; every member is
then dead, and callers are told why.

Run it: actorlib run examples/supervision_groups.py
"""

import os
import signal
import time

import actorlib
from actorlib.exceptions import ActorDiedError


@actorlib.remote
class Stage:
    def __init__(self, name):
        self.name = name
        self.started = time.time()

    def status(self):
        return self.name, os.getpid()


def pids(stages):
    while True:
        try:
            return [actorlib.get(s.status.remote(), timeout=30)[1] for s in stages]
        except ActorDiedError as error:
            if error.final:
                raise


def main() -> None:
    actorlib.init(num_cpus=2)
    with actorlib.supervisor(strategy="one_for_all", max_restarts=1, period_s=60, name="pipeline") as group:
        parser = Stage.remote("parser")
        writer = Stage.remote("writer")
    print("group:", group)
    before = pids([parser, writer])
    print("running:", before)

    os.kill(before[0], signal.SIGKILL)  # the parser crashes...
    after = pids([parser, writer])
    while set(after) & set(before):
        after = pids([parser, writer])
    print("one_for_all restarted both:", after)

    os.kill(after[1], signal.SIGKILL)  # a second crash exceeds max_restarts=1
    try:
        while True:
            pids([parser, writer])
    except ActorDiedError as error:
        print("the group gave up:", "escalated" in str(error))
    actorlib.shutdown()
    print("supervision groups ok")


if __name__ == "__main__":
    main()
