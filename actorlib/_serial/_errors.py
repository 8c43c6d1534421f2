"""Boxing an exception where it was raised, unboxing it where it is awaited."""

from __future__ import annotations

import os
import pickle
import socket
import traceback
from typing import Any


from ._pickler import dumps
from ..exceptions import ActorlibError, TaskError
from .._wire import ErrorValue

# Set on an ObjectLostError raised reading a call's stored argument: the argument's
# object id, so that the task's owner can recover the argument and run it again.
LOST_ARGUMENT = "lost_argument_id"


class _Boxed:
    """What crosses the wire for a task's exception.

    The cause travels as its own pickle, so that if its class does not exist
    where the error is raised, the function name, type, message and traceback
    still arrive.
    """

    def __init__(self, cause: BaseException | None, traceback_str: str, function_name: str, pid: int, ip: str) -> None:
        self.cause_data = dumps(cause) if cause is not None else None
        self.cause_type = type(cause).__qualname__ if cause is not None else ""
        self.cause_message = str(cause) if cause is not None else ""
        self.traceback_str = traceback_str
        self.function_name = function_name
        self.pid = pid
        self.ip = ip

    def cause(self) -> BaseException | None:
        if self.cause_data is None:
            return None
        try:
            return pickle.loads(self.cause_data)
        except Exception as exc:
            return RuntimeError(f"{self.cause_type}: {self.cause_message} (its class is not available here: {exc})")


_ip = None


def _host_ip() -> str:
    global _ip
    if _ip is None:
        try:
            _ip = socket.gethostbyname(socket.gethostname())
        except OSError:
            _ip = "127.0.0.1"
    return _ip


def box(exc: BaseException, function_name: str) -> ErrorValue:
    """Box an exception a task raised (a TaskError from a nested get is boxed by its cause)."""
    if isinstance(exc, ActorlibError) and not isinstance(exc, TaskError):
        return box_system(exc)
    text = "".join(traceback.format_exception(exc))
    cause: BaseException | None = exc
    if isinstance(exc, TaskError):
        cause = exc.cause
        text = f"{exc.traceback_str.rstrip()}\n\nThe above failure in {exc.function_name}() then failed:\n\n{text}"
    boxed = _Boxed(_portable(cause), text, function_name, os.getpid(), _host_ip())
    return ErrorValue(data=dumps(boxed))


def box_system(exc: BaseException) -> ErrorValue:
    """Box an actorlib system error (crash, cancel, lost object...) to raise as it is."""
    return ErrorValue(data=dumps(exc))


def unbox(value: ErrorValue) -> BaseException:
    """The exception to raise for a boxed error."""
    try:
        boxed = pickle.loads(value.data)
    except Exception as exc:
        return TaskError("<unknown>", f"(the error could not be deserialized: {exc})", None)
    if isinstance(boxed, _Boxed):
        error = TaskError(boxed.function_name, boxed.traceback_str, boxed.cause(), boxed.pid, boxed.ip)
        return error.as_instanceof_cause()
    return boxed


def _portable(exc: BaseException | None) -> BaseException | None:
    """``exc`` if it survives a pickle round trip, else a RuntimeError with its text."""
    if exc is None:
        return None
    try:
        pickle.loads(dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__qualname__}: {exc} (the original could not be pickled)")


def boxed_type(value: ErrorValue) -> type[Any] | None:
    """The original exception class of a boxed task error (for retry_exceptions)."""
    error = unbox(value)
    if isinstance(error, TaskError):
        return type(error.cause) if error.cause is not None else None
    return type(error)
