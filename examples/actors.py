"""Actors: stateful remote classes — state, named actors, async methods, streaming, restarts.

Run it: actorlib run examples/actors.py   (or: python examples/actors.py)
"""

import asyncio
import os
import signal

import actorlib
from actorlib.exceptions import ActorDiedError


@actorlib.remote
class Counter:
    def __init__(self, start=0):
        self.value = start

    def add(self, amount=1):
        self.value += amount
        return self.value


@actorlib.remote(max_restarts=3)
class Session:
    """Ends itself: exit_actor() ends an actor for good, whatever its max_restarts."""

    def close(self):
        actorlib.actor.exit_actor()


@actorlib.remote
class Fetcher:
    """An async actor, written with asyncio exactly as for Ray: calls run concurrently."""

    async def fetch(self, seconds):
        await asyncio.sleep(seconds)
        return seconds


@actorlib.remote
class Ticker:
    @actorlib.method(num_returns="streaming")
    def ticks(self, n):
        for i in range(n):
            yield f"tick {i}"


@actorlib.remote(max_restarts=2)
class Resilient:
    def __init__(self):
        self.pid = os.getpid()

    def whoami(self):
        return self.pid


@actorlib.remote
def bump(counter, amount):
    """Handles can be passed to tasks (and to other actors)."""
    return actorlib.get(counter.add.remote(amount))


def call_until_restarted(actor, old_pid):
    while True:
        try:
            pid = actorlib.get(actor.whoami.remote(), timeout=30)
        except ActorDiedError as error:
            if error.final:
                raise
            continue  # the call raced with the death; the actor is coming back
        if pid != old_pid:
            return pid


def main() -> None:
    actorlib.init(num_cpus=2)

    counter = Counter.options(name="global-counter").remote(100)
    print("counter:", actorlib.get([counter.add.remote() for _ in range(3)]))
    print("through a task:", actorlib.get(bump.remote(counter, 10)))
    print("by name:", actorlib.get(actorlib.get_actor("global-counter").add.remote(0)))

    fetcher = Fetcher.remote()
    print("10 concurrent async calls:", sum(actorlib.get([fetcher.fetch.remote(0.2) for _ in range(10)])))

    print("streamed:", [actorlib.get(ref) for ref in Ticker.remote().ticks.remote(3)])

    resilient = Resilient.remote()
    pid = actorlib.get(resilient.whoami.remote())
    for _ in range(2):
        os.kill(pid, signal.SIGKILL)
        pid = call_until_restarted(resilient, pid)
        print("restarted as pid", pid)
    os.kill(pid, signal.SIGKILL)
    try:
        call_until_restarted(resilient, pid)
    except ActorDiedError as error:
        print("gave up after max_restarts=2:", str(error).split(":")[0])

    session = Session.remote()
    try:
        actorlib.get(session.close.remote())
    except ActorDiedError as error:
        print("closed itself:", error)

    actorlib.kill(counter)
    actorlib.shutdown()
    print("actors ok")


if __name__ == "__main__":
    main()
