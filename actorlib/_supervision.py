"""Supervision groups: actors under one supervisor with an OTP strategy (beyond Ray)."""

from __future__ import annotations

import threading
from types import TracebackType

from . import _ids
from ._wire import GroupSpec

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one")

_local = threading.local()


class SupervisionGroup:
    """A supervisor for a set of actors on one node.

    Actors join with ``Cls.options(supervisor=group).remote(...)``, or by
    being created inside ``with group:``. When one dies, the group restarts
    it — and, by ``strategy``, its siblings (``one_for_all``: all of them;
    ``rest_for_one``: the ones created after it). More than ``max_restarts``
    restarts within ``period_s`` seconds and the group gives up: every member
    is dead, and callers get ActorDiedError naming the escalation. In a
    group, the group's limits replace each actor's ``max_restarts``.
    """

    def __init__(self, strategy: str = "one_for_one", max_restarts: int = 3, period_s: float = 60.0, name: str | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be an integer >= 0, got {max_restarts!r}")
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s!r}")
        group_id = _ids.unique_id()
        self.spec = GroupSpec(
            group_id=group_id,
            name=name or f"group-{_ids.short(group_id)}",
            strategy=strategy,
            max_restarts=max_restarts,
            period_s=float(period_s),
        )

    @property
    def name(self) -> str:
        return self.spec.name

    def __enter__(self) -> SupervisionGroup:
        stack = getattr(_local, "stack", None)
        if stack is None:
            stack = _local.stack = []
        stack.append(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        _local.stack.pop()

    def __repr__(self) -> str:
        spec = self.spec
        return f"SupervisionGroup({spec.name!r}, strategy={spec.strategy!r}, max_restarts={spec.max_restarts}, period_s={spec.period_s:g})"


def supervisor(strategy: str = "one_for_one", max_restarts: int = 3, period_s: float = 60.0, name: str | None = None) -> SupervisionGroup:
    """A supervision group for actors; use it as a context manager or pass it as ``supervisor=``."""
    return SupervisionGroup(strategy, max_restarts, period_s, name)


def current_group() -> SupervisionGroup | None:
    """The innermost ``with group:`` block on this thread, if any."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else None
