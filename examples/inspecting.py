"""Inspecting a running cluster: its supervision tree, the state listings, the CLI.

An actor's process is SIGKILLed; its supervisor restarts it, and the tree says
how often and why. The same data is there from Python (actorlib.util.state)
and from the terminal (actorlib tree, list, summary, logs, timeline).

Run it: python examples/inspecting.py
"""

import os
import signal
import subprocess
import sys
import time

import actorlib
from actorlib.exceptions import ActorDiedError
from actorlib.util import state


@actorlib.remote(max_restarts=3)
class Cache:
    def __init__(self):
        self.items = {}

    def pid(self):
        return os.getpid()


@actorlib.remote
def work(x):
    print(f"working on {x}")
    return x * x


def pid_after(actor, old):
    """The actor's pid once a new incarnation answers."""
    while True:
        try:
            pid = actorlib.get(actor.pid.remote(), timeout=30)
            if pid != old:
                return pid
        except ActorDiedError as error:
            if error.final:
                raise


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def main() -> None:
    actorlib.init(num_cpus=2)
    cache = Cache.options(name="cache").remote()
    first = actorlib.get(cache.pid.remote())
    print(sum(actorlib.get([work.remote(i) for i in range(20)])))
    os.kill(first, signal.SIGKILL)  # the actor's supervisor restarts it
    pid_after(cache, first)

    (actor,) = state.list_actors(filters=[("name", "=", "cache")])
    print(f"{actor.class_name} {actor.name!r} is {actor.state} after {actor.num_restarts} restart(s)")
    tree = state.get_tree()
    process = next(n for node in tree.nodes for n in walk(node.root) if n.role == "actor" and n.actor_name == "cache")
    print(f"pid {process.pid}, restarts {process.restarts}, last exit: {process.last_exit.reason}")

    deadline = time.monotonic() + 10  # workers report what they ran about once a second
    while state.summarize_tasks().by_name.get("work", {}).get("FINISHED", 0) < 20 and time.monotonic() < deadline:
        time.sleep(0.2)
    print("work tasks:", state.summarize_tasks().by_name["work"])

    # The same from the terminal: the whole cluster as one supervision tree.
    address = actorlib.get_runtime_context().gcs_address
    subprocess.run([sys.executable, "-m", "actorlib", "tree", "--address", address], check=True)
    actorlib.shutdown()
    print("inspecting ok")


if __name__ == "__main__":
    main()
