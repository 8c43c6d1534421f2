"""Restart intensity: at most N restarts within a sliding window (pure)."""

from __future__ import annotations

import math

import msgspec


class Intensity(msgspec.Struct, frozen=True, kw_only=True):
    """Escalate when more than ``max_restarts`` restarts happen within ``within`` seconds.

    ``within=math.inf`` counts restarts over the child's whole life, which is
    Ray's ``max_restarts`` semantics.
    """

    max_restarts: int = 5
    within: float = 30.0

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if not self.within > 0:
            raise ValueError(f"within must be > 0 seconds, got {self.within}")

    def window(self, history: tuple[float, ...], now: float) -> tuple[float, ...]:
        """The restart times still inside the window ending at ``now``."""
        if math.isinf(self.within):
            return history
        return tuple(t for t in history if now - t < self.within)

    def record(self, history: tuple[float, ...], now: float) -> tuple[tuple[float, ...], bool]:
        """Add a restart at ``now``; return the new history and whether it is exceeded."""
        kept = self.window(history, now) + (now,)
        return kept, len(kept) > self.max_restarts
