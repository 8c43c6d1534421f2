"""How a child ended: the exit record and its classification (pure)."""

from __future__ import annotations

import enum
import signal as _signal
import traceback as _traceback

import msgspec


class ExitKind(enum.Enum):
    """The three exit classes that restart types are defined over."""

    NORMAL = "normal"  # the child returned, or its process exited 0 unasked
    SHUTDOWN = "shutdown"  # we (or an operator) asked it to stop, or it raised Shutdown
    ABNORMAL = "abnormal"  # anything else: exception, non-zero code, foreign signal, escalation


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    """One incarnation's end, as recorded by its supervisor."""

    kind: ExitKind
    reason: str
    code: int | None = None
    signal: int | None = None
    error_type: str | None = None
    traceback: str | None = None
    escalated: bool = False
    at: float = 0.0


class Shutdown(Exception):
    """Raised by a child to say "I am stopping on purpose"; classified as shutdown."""


def exit_from_exception(exc: BaseException, *, at: float) -> Exit:
    """Box an exception raised by a child into an abnormal (or shutdown) exit."""
    text = "".join(_traceback.format_exception(exc))
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # a nursery's lone error: name the error, not the group
    if isinstance(exc, Shutdown):
        return Exit(kind=ExitKind.SHUTDOWN, reason=f"shutdown: {exc}", at=at)
    name = type(exc).__qualname__
    return Exit(
        kind=ExitKind.ABNORMAL,
        reason=f"{name}: {exc}" if str(exc) else name,
        error_type=name,
        traceback=text,
        at=at,
    )


def exit_from_returncode(
    returncode: int,
    *,
    stop_requested: bool,
    at: float,
    failure: tuple[str, str, str] | None = None,
) -> Exit:
    """Classify a process exit status.

    ``failure`` is the (type, message, traceback) the child reported over its
    control channel before dying, if it did.
    """
    code = returncode if returncode >= 0 else None
    sig = -returncode if returncode < 0 else None
    if sig is not None:
        reason = f"killed by {_signal_name(sig)}"
        if sig == _signal.SIGKILL and not stop_requested:
            reason += " (possible OOM)"
    else:
        reason = f"exit code {code}"
    if failure is not None:
        err_type, message, tb = failure
        reason = f"{err_type}: {message}" if message else err_type
        if stop_requested:
            return Exit(kind=ExitKind.SHUTDOWN, reason=reason, code=code, signal=sig, at=at)
        return Exit(
            kind=ExitKind.ABNORMAL,
            reason=reason,
            code=code,
            signal=sig,
            error_type=err_type,
            traceback=tb,
            at=at,
        )
    if stop_requested:
        return Exit(kind=ExitKind.SHUTDOWN, reason=f"stopped ({reason})", code=code, signal=sig, at=at)
    kind = ExitKind.NORMAL if returncode == 0 else ExitKind.ABNORMAL
    return Exit(kind=kind, reason=reason, code=code, signal=sig, at=at)


def _signal_name(sig: int) -> str:
    try:
        return _signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
