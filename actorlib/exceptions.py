"""Every error actorlib raises, and Ray's names for them.

::

    ActorlibError                      (Ray: RayError)
    ├── TaskError                      (Ray: RayTaskError) the task raised; see below
    ├── WorkerCrashedError             the worker process died mid-task, retries exhausted
    │   └── OutOfMemoryError           ... killed by its node's memory monitor (the node ran short)
    ├── TaskCancelledError             actorlib.cancel() was called on the task
    ├── GetTimeoutError                also a TimeoutError: get(..., timeout=) expired
    ├── ObjectLostError                the object's value is gone
    │   ├── OwnerDiedError             ... because the process that owned it died
    │   └── ObjectFreedError           ... because its owner already freed it
    ├── ObjectStoreFullError           the shared-memory store cannot hold the object
    ├── InfeasibleResourcesError       also a ValueError: no node can ever satisfy the request
    ├── SerializationError             also a TypeError: a value cannot be pickled or unpickled
    ├── WorkerStartError               no worker process could be started (or reached) for the task
    ├── TaskUnschedulableError         the task can never be placed (its placement group was removed)
    ├── ActorError                     (Ray: RayActorError)
    │   ├── ActorDiedError             the actor is dead and will not come back
    │   └── ActorUnavailableError      the actor is restarting; try again
    ├── AsyncioActorExit               raised inside an actor by actor.exit_actor() (not an error)
    ├── RuntimeShutdownError           the runtime was shut down while waiting
    ├── NotInitializedError            also a RuntimeError: call actorlib.init() first
    ├── AuthenticationError            the cluster's HTTP API refused the token (missing or wrong)
    └── JobSubmissionError             also a RuntimeError: the jobs API refused a request (.status)

Ray's names are aliases: ``RayError`` and ``RaySystemError`` for ActorlibError,
``RayTaskError`` for TaskError, ``RayActorError`` for ActorError,
``RuntimeEnvSetupError`` for WorkerStartError (what a broken runtime
environment raises here) and ``TaskPlacementGroupRemoved`` for
TaskUnschedulableError.

A :class:`TaskError` is also an instance of the exception the task raised:
``except ValueError`` catches a remote ``ValueError``. It keeps the original's
attributes (``.cause`` is the original itself) and carries the remote
traceback in ``.traceback_str`` and in its message.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActorDiedError",
    "ActorError",
    "ActorUnavailableError",
    "ActorlibError",
    "AsyncioActorExit",
    "AuthenticationError",
    "GetTimeoutError",
    "InfeasibleResourcesError",
    "JobSubmissionError",
    "NotInitializedError",
    "ObjectFreedError",
    "ObjectLostError",
    "ObjectStoreFullError",
    "OutOfMemoryError",
    "OwnerDiedError",
    "RuntimeShutdownError",
    "SerializationError",
    "TaskCancelledError",
    "TaskError",
    "TaskUnschedulableError",
    "WorkerCrashedError",
    "WorkerStartError",
    # Ray's names
    "RayActorError",
    "RayError",
    "RaySystemError",
    "RayTaskError",
    "RuntimeEnvSetupError",
    "TaskPlacementGroupRemoved",
]


class ActorlibError(Exception):
    """Base of every actorlib error."""


class TaskError(ActorlibError):
    """A task (or actor method) raised an exception.

    Caught as ``TaskError``, as ``ActorlibError`` or as the original
    exception's class (the instance's class derives from both).
    """

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException | None,
        pid: int | None = None,
        ip: str | None = None,
    ) -> None:
        Exception.__init__(self, function_name, traceback_str)
        self._set_fields(function_name, traceback_str, cause, pid, ip)

    def _set_fields(
        self, function_name: str, traceback_str: str, cause: BaseException | None, pid: int | None, ip: str | None
    ) -> None:
        # Not __init__: in a dual class, super().__init__ would reach the
        # cause class's __init__, whose signature is the user's business.
        self.function_name = function_name
        self.traceback_str = traceback_str
        self.cause = cause
        self.pid = pid
        self.ip = ip

    def __str__(self) -> str:
        where = f"{self.function_name}()" + (f" (pid={self.pid}, ip={self.ip})" if self.pid else "")
        head = f"{type(self.cause).__name__}: {self.cause}" if self.cause is not None else "task failed"
        return f"{head}\n\n{where} failed with this remote traceback:\n\n{self.traceback_str.rstrip()}"

    def __reduce__(self) -> Any:
        return (_rebuild_task_error, (self.function_name, self.traceback_str, self.cause, self.pid, self.ip))

    def as_instanceof_cause(self) -> TaskError:
        """This error as an instance of a class deriving from both TaskError and the cause's class."""
        if self.cause is None or isinstance(self.cause, TaskError):
            return self
        dual = _dual_class(type(self.cause))
        if dual is None:
            return self
        try:
            error = dual.__new__(dual, *self.cause.args)
        except Exception:
            return self
        error.__dict__.update(getattr(self.cause, "__dict__", {}))
        if isinstance(self.cause, OSError):  # C-level fields that __dict__ does not hold
            for name in ("errno", "strerror", "filename", "filename2"):
                setattr(error, name, getattr(self.cause, name))
        error._set_fields(self.function_name, self.traceback_str, self.cause, self.pid, self.ip)
        error.args = self.cause.args
        return error


_dual_classes: dict[type, type | None] = {}


def _dual_class(cause_cls: type[BaseException]) -> type | None:
    if cause_cls not in _dual_classes:
        try:
            dual = type(
                f"TaskError({cause_cls.__name__})",
                (TaskError, cause_cls),
                {"__str__": TaskError.__str__, "__reduce__": TaskError.__reduce__, "__module__": __name__},
            )
        except TypeError:
            dual = None  # incompatible instance layouts: plain TaskError it is
        _dual_classes[cause_cls] = dual
    return _dual_classes[cause_cls]


def _rebuild_task_error(
    function_name: str, traceback_str: str, cause: BaseException | None, pid: int | None, ip: str | None
) -> TaskError:
    return TaskError(function_name, traceback_str, cause, pid, ip).as_instanceof_cause()


class WorkerCrashedError(ActorlibError):
    """The worker running the task died (crash, signal, os._exit) and retries are exhausted."""


class OutOfMemoryError(WorkerCrashedError):
    """A node's memory monitor killed the worker running the task (the node was about to run out
    of memory), and the task could not be retried; the message has the figures (Ray's name)."""


class TaskCancelledError(ActorlibError):
    """The task was cancelled with actorlib.cancel()."""


class GetTimeoutError(ActorlibError, TimeoutError):
    """actorlib.get() did not get every value within its timeout."""


class ObjectLostError(ActorlibError):
    """The object's value cannot be retrieved."""


class OwnerDiedError(ObjectLostError):
    """The process that owned the object (and knew where it lives) died."""


class ObjectFreedError(ObjectLostError):
    """The object was freed by its owner before it was read."""


class ObjectStoreFullError(ActorlibError):
    """The node's shared-memory object store has no room for the object."""


class InfeasibleResourcesError(ActorlibError, ValueError):
    """No node in the cluster could ever satisfy the task's resource request."""


class SerializationError(ActorlibError, TypeError):
    """A value could not be serialized (or deserialized); the message names it."""


class WorkerStartError(ActorlibError):
    """Worker processes for the task fail to start (a broken environment, usually), or no
    worker granted to it could be reached for a long while (its node froze or is gone)."""


class TaskUnschedulableError(ActorlibError):
    """The task can never be scheduled: its placement group was removed, or its bundle does not exist."""


class ActorError(ActorlibError):
    """The actor could not run the call."""


class ActorDiedError(ActorError):
    """The actor died: for good (``final``), or while running this call (it may restart)."""

    def __init__(self, message: str = "", *, final: bool = True) -> None:
        super().__init__(message)
        self.final = final

    def __reduce__(self) -> Any:
        return (_rebuild_actor_died, (str(self), self.final))


def _rebuild_actor_died(message: str, final: bool) -> ActorDiedError:
    return ActorDiedError(message, final=final)


class ActorUnavailableError(ActorError):
    """The actor is restarting or unreachable for now."""


class AsyncioActorExit(ActorlibError):
    """Raised inside an actor's method by ``actorlib.actor.exit_actor()`` to end the actor:
    let it propagate (the actor's runtime catches it; callers never see it)."""


class RuntimeShutdownError(ActorlibError):
    """actorlib.shutdown() was called (or the cluster stopped) while this was waiting."""


class NotInitializedError(ActorlibError, RuntimeError):
    """The call needs actorlib.init() first."""


class AuthenticationError(ActorlibError):
    """The cluster's HTTP API refused this client: no token, or a wrong one (HTTP 401/403)."""


class JobSubmissionError(ActorlibError, RuntimeError):
    """The jobs API answered a request with an error; ``status`` is the HTTP status (as Ray: a RuntimeError)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.status))


# Ray's names, so ``import actorlib as ray`` code keeps working.
RayError = ActorlibError
RayTaskError = TaskError
RayActorError = ActorError
RaySystemError = ActorlibError
RuntimeEnvSetupError = WorkerStartError
TaskPlacementGroupRemoved = TaskUnschedulableError
