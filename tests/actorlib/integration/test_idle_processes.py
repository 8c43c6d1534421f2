"""What keeps idle processes cheap: housekeeping that slows down when nothing happens,
and actor processes that keep sharing the zygote's memory."""

from __future__ import annotations

import gc

import actorlib
from actorlib._core import current
from actorlib._core._runtime import IDLE_AFTER

from .conftest import poll


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
