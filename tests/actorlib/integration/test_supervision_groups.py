"""Supervision groups: OTP strategies across actors, and escalation."""

from __future__ import annotations

import os
import signal

import pytest

import actorlib
from actorlib.exceptions import ActorDiedError

from .conftest import alive, poll

pytestmark = pytest.mark.usefixtures("cluster")


@actorlib.remote
class Member:
    def pid(self) -> int:
        return os.getpid()


def pids(members) -> list[int | None]:
    result = []
    for member in members:
        try:
            result.append(actorlib.get(member.pid.remote(), timeout=30))
        except ActorDiedError:
            result.append(None)
    return result


def restarted(members, before, expected):
    """Poll until exactly the members flagged in ``expected`` have new pids."""

    def check():
        now = pids(members)
        if None in now:
            return None
        changed = [a != b for a, b in zip(before, now)]
        return now if changed == expected else None

    return poll(check, timeout=30)


@pytest.mark.parametrize(
    ("strategy", "crash", "expected"),
    [
        ("one_for_one", 1, [False, True, False]),
        ("one_for_all", 1, [True, True, True]),
        ("rest_for_one", 1, [False, True, True]),
    ],
)
def test_strategies(strategy, crash, expected):
    with actorlib.supervisor(strategy=strategy, max_restarts=5, period_s=60):
        members = [Member.remote() for _ in range(3)]
    before = pids(members)
    os.kill(before[crash], signal.SIGKILL)
    after = restarted(members, before, expected)
    assert not any(alive(p) for p, a in zip(before, after) if p != a)


def test_escalation_kills_the_whole_group():
    group = actorlib.supervisor(strategy="one_for_all", max_restarts=1, period_s=60, name="fragile")
    members = [Member.options(supervisor=group).remote() for _ in range(2)]
    before = pids(members)
    os.kill(before[0], signal.SIGKILL)
    current = restarted(members, before, [True, True])
    os.kill(current[0], signal.SIGKILL)

    def all_dead():
        errors = []
        for member in members:
            try:
                actorlib.get(member.pid.remote(), timeout=30)
                return None
            except ActorDiedError as error:
                if not error.final:
                    return None
                errors.append(str(error))
        return errors

    errors = poll(all_dead, timeout=30)
    assert all("escalated" in e and "fragile" in e for e in errors)
    assert not any(alive(p) for p in before + current)


def test_groups_need_a_valid_strategy():
    with pytest.raises(ValueError, match="strategy must be one of"):
        actorlib.supervisor(strategy="all_for_none")
