"""What one call in a pool produced: its value, or its exception with the remote traceback."""

from __future__ import annotations

import traceback
from multiprocessing.pool import RemoteTraceback  # type: ignore[attr-defined]  # exists, untyped
from typing import Any

import cloudpickle


class Failure:
    """A call that raised. Re-raised in the caller as the original exception, its
    ``__cause__`` a RemoteTraceback holding the worker's traceback (as ``multiprocessing`` does)."""

    __slots__ = ("exc", "tb")

    def __init__(self, exc: BaseException, tb: str = "") -> None:
        self.exc = exc
        self.tb = tb

    @classmethod
    def caught(cls, exc: BaseException) -> Failure:
        """The failure of a call that raised ``exc`` here; an unpicklable exception becomes a RuntimeError."""
        tb = "".join(traceback.format_exception(exc))
        try:
            cloudpickle.dumps(exc)
        except Exception as problem:
            exc = RuntimeError(f"{type(exc).__name__}: {exc} (unpicklable: {problem})")
        return cls(exc, tb)

    def __reduce__(self) -> Any:
        return (Failure, (self.exc, self.tb))

    def raise_(self) -> None:
        exc = self.exc.with_traceback(None)
        if self.tb:
            exc.__cause__ = RemoteTraceback(self.tb)
        raise exc


def unwrap(outcome: Any) -> Any:
    """The value of an outcome; raises a Failure's exception."""
    if type(outcome) is Failure:
        outcome.raise_()
    return outcome


def first_failure(outcomes: list[Any]) -> Failure | None:
    return next((o for o in outcomes if type(o) is Failure), None)

