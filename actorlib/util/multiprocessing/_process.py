"""The actor that is one process of a Pool: runs the initializer once, then batches of calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import actorlib

from ._outcome import Failure


class PoolProcess:
    """One pool process. Runs one batch at a time (a sync actor), in arrival order."""

    def __init__(self, initializer: Callable[..., Any] | None, initargs: tuple[Any, ...]) -> None:
        if initializer is not None:
            initializer(*initargs)

    def ping(self) -> None:
        """Answers once the initializer has run."""

    def run_batch(self, func: Callable[..., Any], batch: list[tuple[Any, ...]], kwargs: dict[str, Any] | None = None) -> list[Any]:
        """``func(*args, **kwargs)`` for each ``args`` of the batch; each result, or a Failure."""
        outcomes: list[Any] = []
        for args in batch:
            try:
                outcomes.append(func(*args, **(kwargs or {})))
            except Exception as exc:
                outcomes.append(Failure.caught(exc))
        return outcomes


RemotePoolProcess = actorlib.remote(PoolProcess)
