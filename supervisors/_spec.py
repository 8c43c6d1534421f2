"""ChildSpec: how to start a child and what to do when it exits."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ._child import Child
from ._policy import Restart

Shutdown = float | Literal["brutal_kill", "infinity"] | None

PROCESS_SHUTDOWN_DEFAULT = 5.0
START_TIMEOUT_DEFAULT = 30.0


@dataclass(frozen=True, kw_only=True)
class ChildSpec:
    """A supervised child: ``start()`` makes a fresh incarnation each time it is (re)started.

    ``shutdown`` is seconds allowed for a graceful stop, ``"brutal_kill"``
    or ``"infinity"``; None means 5 s for processes and infinity for tasks
    and supervisors (a subtree gets to finish its ordered stop).
    """

    id: str
    start: Callable[[], Child]
    restart: Restart | str = Restart.PERMANENT
    shutdown: Shutdown = None
    start_timeout: float = START_TIMEOUT_DEFAULT
    significant: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "restart", Restart(self.restart))
        if not self.id or "/" in self.id:
            raise ValueError(f"child id must be non-empty and contain no '/', got {self.id!r}")
        if self.significant and self.restart is Restart.PERMANENT:
            raise ValueError(f"child {self.id!r}: only transient or temporary children may be significant")
        if isinstance(self.shutdown, (int, float)) and self.shutdown < 0:
            raise ValueError(f"child {self.id!r}: shutdown must be >= 0 seconds")
        if self.start_timeout <= 0:
            raise ValueError(f"child {self.id!r}: start_timeout must be > 0 seconds")

    def stop_timeout(self, kind: str) -> float | None:
        """Seconds allowed to stop an incarnation of this kind (None: no limit)."""
        if self.shutdown == "brutal_kill":
            return 0.0
        if self.shutdown == "infinity":
            return None
        if self.shutdown is None:
            return PROCESS_SHUTDOWN_DEFAULT if kind == "process" else None
        return None if math.isinf(self.shutdown) else float(self.shutdown)
