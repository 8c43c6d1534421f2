"""Actors on a real cluster: state, ordering, handles passed around, names and lifetimes."""

from __future__ import annotations

import os
import time

import pytest

import actorlib
from actorlib.exceptions import ActorDiedError

from .conftest import alive, poll, run_driver

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
class Counter:
    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.log: list[int] = []

    def add(self, amount: int = 1) -> int:
        self.value += amount
        self.log.append(amount)
        return self.value

    def history(self) -> list[int]:
        return self.log

    def pid(self) -> int:
        return os.getpid()

    @actorlib.method(num_returns=2)
    def pair(self) -> tuple[int, int]:
        return self.value, -self.value

    def fail(self) -> None:
        raise KeyError("no such thing")


@actorlib.remote
def add_through(counter, amount: int) -> int:
    return actorlib.get(counter.add.remote(amount))


@actorlib.remote
class Forwarder:
    def __init__(self, target) -> None:
        self.target = target

    def forward(self, amount: int) -> int:
        return actorlib.get(self.target.add.remote(amount))


def test_state_lives_in_its_own_process():
    counter = Counter.remote(10)
    assert actorlib.get(counter.add.remote()) == 11
    assert actorlib.get(counter.add.remote(5)) == 16
    assert actorlib.get(counter.pid.remote()) != os.getpid()


def test_calls_from_one_caller_run_in_submission_order():
    counter = Counter.remote()
    refs = [counter.add.remote(i) for i in range(200)]
    actorlib.get(refs)
    assert actorlib.get(counter.history.remote()) == list(range(200))


def test_arguments_that_are_refs_keep_the_order():
    counter = Counter.remote()
    slow = actorlib.put(1)
    refs = [counter.add.remote(slow), counter.add.remote(2), counter.add.remote(actorlib.put(3))]
    assert actorlib.get(refs) == [1, 3, 6]


def test_calls_with_ref_arguments_are_not_overtaken_by_later_calls_on_a_connected_actor():
    counter = Counter.remote()
    actorlib.get(counter.add.remote(0))  # connected: calls without ref arguments take the fast path
    refs = []
    for i in range(1, 201):
        argument = actorlib.put(i) if i % 2 else i  # a ref argument goes through the runtime thread
        refs.append(counter.add.remote(argument))
    actorlib.get(refs)
    assert actorlib.get(counter.history.remote()) == list(range(201))


def test_num_returns_and_errors():
    counter = Counter.remote(4)
    assert actorlib.get(counter.pair.remote()) == [4, -4]
    with pytest.raises(KeyError, match="no such thing"):
        actorlib.get(counter.fail.remote())
    assert actorlib.get(counter.add.remote()) == 5  # an exception in a method does not kill it


def test_handles_are_usable_in_tasks_and_other_actors():
    counter = Counter.remote()
    assert actorlib.get(add_through.remote(counter, 5)) == 5
    forwarder = Forwarder.remote(counter)
    assert actorlib.get(forwarder.forward.remote(2)) == 7
    assert actorlib.get(counter.add.remote(0)) == 7


def test_unknown_methods_and_direct_calls_are_errors():
    counter = Counter.remote()
    with pytest.raises(AttributeError, match="'Counter' actor has no method 'nope'"):
        counter.nope.remote()
    with pytest.raises(TypeError, match=r"Counter\.remote\(\)"):
        Counter()
    with pytest.raises(TypeError, match=r"\.add\.remote\(\)"):
        counter.add()


def test_named_actors():
    first = Counter.options(name="shared-counter").remote(100)
    assert actorlib.get(actorlib.get_actor("shared-counter").add.remote()) == 101
    with pytest.raises(ValueError, match="already exists"):
        Counter.options(name="shared-counter").remote()
    again = Counter.options(name="shared-counter", get_if_exists=True).remote()
    assert again == first
    assert actorlib.get(again.add.remote()) == 102
    with pytest.raises(ValueError, match="no live actor named 'nobody'"):
        actorlib.get_actor("nobody")
    other = Counter.options(name="shared-counter", namespace="elsewhere").remote()
    assert other != first
    assert actorlib.get_actor("shared-counter", namespace="elsewhere") == other


def test_kill_fails_pending_calls_and_frees_the_name():
    counter = Counter.options(name="doomed").remote()
    pid = actorlib.get(counter.pid.remote())
    actorlib.kill(counter)
    with pytest.raises(ActorDiedError, match="killed by actorlib.kill") as info:
        actorlib.get(counter.add.remote(), timeout=30)
    assert info.value.final
    poll(lambda: not alive(pid))
    replacement = Counter.options(name="doomed").remote(7)
    assert actorlib.get(replacement.add.remote(0)) == 7


def test_dropping_every_handle_ends_the_actor():
    counter = Counter.remote()
    pid = actorlib.get(counter.pid.remote())
    del counter
    poll(lambda: not alive(pid))


@actorlib.remote
def open_when(path: str) -> int:
    while not os.path.exists(path):
        time.sleep(0.01)
    return 0


def test_an_actor_whose_handle_drops_before_its_creation_is_sent_is_created_then_ended(tmp_path):
    from actorlib._core import current

    runtime = current()
    gate = tmp_path / "gate"
    actor_id = Counter.remote(open_when.remote(str(gate)))._actor_id  # the handle is dropped at once
    poll(lambda: not runtime.actors._handle_events)  # the drop was counted while its creation waits
    gate.write_text("open")
    poll(lambda: actor_id not in runtime.actors._actors, timeout=60)  # created, then ended
    assert not runtime.closed  # the runtime thread is fine
    counter = Counter.remote()
    assert actorlib.get(counter.add.remote(), timeout=60) == 1


def test_actor_processes_show_resources():
    # Leases earlier tests' tasks still hold go back in their own time: measure from a quiet
    # cluster, or a lease given back while the actor starts hides the CPU the actor takes.
    total = actorlib.cluster_resources()["CPU"]
    before = poll(lambda: (cpus := actorlib.available_resources().get("CPU", 0)) == total and cpus, timeout=60)
    counter = Counter.options(num_cpus=1).remote()
    actorlib.get(counter.add.remote())
    poll(lambda: actorlib.available_resources().get("CPU", 0) <= before - 1)
    actorlib.kill(counter)
    poll(lambda: actorlib.available_resources().get("CPU", 0) >= before)


def test_non_detached_actors_die_with_their_driver_and_detached_ones_do_not():
    code = """
        import actorlib, os, json
        actorlib.init(address=os.environ["HEAD"])

        @actorlib.remote
        class Keeper:
            def pid(self):
                return os.getpid()

        plain = Keeper.remote()
        kept = Keeper.options(name="survivor", lifetime="detached", namespace="test").remote()
        print(json.dumps([actorlib.get(plain.pid.remote()), actorlib.get(kept.pid.remote())]))
    """
    address = actorlib.get_runtime_context()
    head = actorlib._core.current().identity.head_address
    result = run_driver(code, env={"HEAD": head})
    assert result.returncode == 0, result.stderr
    import json

    plain_pid, kept_pid = json.loads(result.stdout.splitlines()[-1])
    poll(lambda: not alive(plain_pid))
    survivor = actorlib.get_actor("survivor", namespace="test")
    assert actorlib.get(survivor.pid.remote()) == kept_pid and alive(kept_pid)
    actorlib.kill(survivor)
    poll(lambda: not alive(kept_pid))
    del address


def test_creating_many_actors():
    started = time.monotonic()
    counters = [Counter.options(num_cpus=0).remote(i) for i in range(8)]
    assert actorlib.get([c.add.remote() for c in counters]) == list(range(1, 9))
    assert time.monotonic() - started < 60
