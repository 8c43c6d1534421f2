"""What keeps idle processes cheap: housekeeping that slows down when nothing happens,
and actor processes that keep sharing the zygote's memory."""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import actorlib
from actorlib._core import current
from actorlib._core._runtime import IDLE_AFTER, IDLE_TICK

from .conftest import poll, still


@actorlib.remote
def one() -> int:
    return 1


@actorlib.remote(num_cpus=0)
class Frozen:
    def frozen(self) -> int:
        return gc.get_freeze_count()


def test_an_idle_driver_ticks_slowly_and_a_submission_wakes_it(cluster):
    runtime = current()
    actorlib.get(one.remote())
    poll(lambda: runtime._quiet_ticks >= IDLE_AFTER)  # nothing in flight: the slow pace
    ref = one.remote()
    poll(lambda: runtime._quiet_ticks < IDLE_AFTER)  # the submission brought the quick pace back
    assert actorlib.get(ref) == 1


def test_references_dropped_while_idle_are_still_applied(cluster):
    runtime = current()
    ref = actorlib.put(b"x" * 200_000)
    object_id = ref.binary()
    poll(lambda: runtime._quiet_ticks >= IDLE_AFTER)
    del ref
    poll(lambda: runtime.objects.get(object_id) is None)


def test_actor_processes_start_with_the_zygotes_objects_frozen(cluster):
    # A full collection in the actor then leaves the pages it shares with the zygote alone.
    actor = Frozen.remote()
    assert actorlib.get(actor.frozen.remote()) > 1000
    actorlib.kill(actor)


@actorlib.remote(num_cpus=0)
class Quiet:
    def pid(self) -> int:
        return os.getpid()

    def threads(self) -> list[str]:
        return [Path(f"/proc/self/task/{task}/comm").read_text().strip() for task in os.listdir("/proc/self/task")]

    def head_connected(self) -> bool:
        channel = current().head.channel
        return channel is not None and not channel.closed

    def submit(self) -> int:
        return actorlib.get(one.remote(), timeout=60)

    def say(self, text: str) -> None:
        print(text, flush=True)

    def asleep(self) -> bool:
        """Whether its runtime's housekeeping waits for something to do (no tick due)."""
        return current()._deep_idle


def test_an_actor_on_the_heads_node_connects_to_the_head_only_once_it_submits_work(cluster):
    # The head never declares its own node dead: the actor needs NodeDied only for work it
    # owns elsewhere. (A connection per actor at boot cost the head's process a handshake each.)
    actor = Quiet.remote()
    assert actorlib.get(actor.head_connected.remote(), timeout=60) is False
    assert actorlib.get(actor.submit.remote(), timeout=60) == 1
    poll(lambda: actorlib.get(actor.head_connected.remote(), timeout=60), timeout=30)
    actorlib.kill(actor)


def test_an_idle_actor_has_three_threads_and_no_log_files_until_it_prints(cluster):
    actor = Quiet.remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    threads = actorlib.get(actor.threads.remote(), timeout=60)
    assert len(threads) == 3, threads  # main (calls), runtime (Trio), supervisor watchdog: no bind thread
    logs = Path(current().identity.session_dir) / "logs"
    assert not list(logs.glob(f"*-{pid}.*"))  # two pipes, no files: a thousand quiet actors make none
    actorlib.get(actor.say.remote("quiet no more"), timeout=60)
    poll(lambda: any("quiet no more" in path.read_text() for path in logs.glob(f"*-{pid}.out")), timeout=30)
    actorlib.kill(actor)


def test_an_idle_actor_sleeps_until_something_happens(cluster):
    # No timer in an idle actor: its housekeeping tick and its task recorder wait for work
    # (a thousand idle actors woken twice a second each cost a core ~10% for nothing).
    actor = Quiet.remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    poll(lambda: actorlib.get(actor.asleep.remote(), timeout=60), timeout=30)
    poll(lambda: _still(pid), timeout=30)  # once its recorder sent the last call's record
    assert actorlib.get(actor.submit.remote(), timeout=60) == 1  # work wakes it, and it goes on
    poll(lambda: actorlib.get(actor.asleep.remote(), timeout=60), timeout=30)
    poll(lambda: _still(pid), timeout=30)
    actorlib.kill(actor)


def _still(pid: int) -> bool:
    """Whether no thread of ``pid`` woke up in a window where the old timers fired four times."""
    return still(pid, 2 * IDLE_TICK)
