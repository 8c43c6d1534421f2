"""Which children stop and start after an exit: restart strategies as pure functions."""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from ._exit import ExitKind


class Strategy(enum.Enum):
    """What a child's exit does to its siblings."""

    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"
    POOL = "pool"  # OTP's simple_one_for_one: one template, dynamic children, parallel shutdown


class Restart(enum.Enum):
    """When a child is restarted after it exits."""

    PERMANENT = "permanent"  # always
    TRANSIENT = "transient"  # only after an abnormal exit
    TEMPORARY = "temporary"  # never; its spec is dropped when it exits


class Plan(NamedTuple):
    """What the supervisor does about one exit."""

    stop: tuple[str, ...]  # running siblings to stop, in stop (reverse start) order
    start: tuple[str, ...]  # children to (re)start, in start order
    remove: tuple[str, ...]  # specs to drop: temporary children that exited or were stopped


def needs_restart(restart: Restart, kind: ExitKind) -> bool:
    """Whether an exit of this kind restarts a child of this restart type."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return kind is ExitKind.ABNORMAL
    return False


def plan_exit(
    strategy: Strategy,
    order: Sequence[str],
    running: Collection[str],
    restarts: Mapping[str, Restart],
    child: str,
    kind: ExitKind,
) -> Plan:
    """Decide the stops and starts that follow ``child`` exiting with ``kind``.

    ``order`` is every child's id in start order (including ``child``);
    ``running`` the ids currently running (``child`` is no longer among them).
    """
    if not needs_restart(restarts[child], kind):
        drop = (child,) if restarts[child] is Restart.TEMPORARY else ()
        return Plan((), (), drop)
    if strategy in (Strategy.ONE_FOR_ONE, Strategy.POOL):
        return Plan((), (child,), ())
    if strategy is Strategy.ONE_FOR_ALL:
        affected = list(order)
    else:
        affected = list(order[order.index(child) :])
    siblings = [c for c in affected if c != child]
    stop = tuple(c for c in reversed(siblings) if c in running)
    start = tuple(c for c in affected if c == child or restarts[c] is not Restart.TEMPORARY)
    remove = tuple(c for c in siblings if restarts[c] is Restart.TEMPORARY)
    return Plan(stop, start, remove)
