"""Exponential backoff with jitter between restarts of one child (pure)."""

from __future__ import annotations

import msgspec


class Backoff(msgspec.Struct, frozen=True, kw_only=True):
    """Delay before restart ``step`` is ``min(max, initial * multiplier**step)``,
    stretched by up to ``jitter`` (0.2 = +20 %) at random; a child that stayed
    up for ``reset_after`` seconds starts again from step 0.
    """

    initial: float = 0.1
    max: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.2
    reset_after: float = 10.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.max < self.initial:
            raise ValueError(f"need 0 <= initial <= max, got initial={self.initial} max={self.max}")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")

    def delay(self, step: int, rand: float) -> float:
        """The delay for ``step``, with ``rand`` drawn uniformly from [0, 1)."""
        base = min(self.max, self.initial * self.multiplier ** min(step, 128))
        return base * (1.0 + self.jitter * rand)

    def schedule(self, step: int, uptime: float, rand: float) -> tuple[float, int]:
        """The delay before the next restart and the step that follows it.

        ``uptime`` is how long the incarnation that just exited stayed up.
        """
        if uptime >= self.reset_after:
            step = 0
        return self.delay(step, rand), step + 1

    def worst_case(self, restarts: int) -> float:
        """Total delay of ``restarts`` back-to-back restarts at full jitter."""
        return sum(self.delay(step, 1.0) for step in range(restarts))
