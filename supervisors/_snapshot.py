"""What inspection tools see: a msgspec Struct tree of supervisors and children."""

from __future__ import annotations

import msgspec

from ._exit import Exit


class IntensityUse(msgspec.Struct, frozen=True, kw_only=True):
    """How much of a supervisor's restart budget the current window has used."""

    restarts: int
    max_restarts: int
    within: float


class ChildInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One node of the supervision tree, as of the moment of the snapshot.

    ``state`` is one of starting, running, restarting, stopping, stopped,
    failed (and escalated, for supervisors). Supervisor nodes also carry
    their strategy, intensity use and children.
    """

    id: str
    path: str
    kind: str
    state: str
    restart: str
    pid: int | None = None
    restarts: int = 0
    uptime: float | None = None
    restart_eta: float | None = None
    last_exit: Exit | None = None
    significant: bool = False
    strategy: str | None = None
    intensity: IntensityUse | None = None
    children: list[ChildInfo] = []
