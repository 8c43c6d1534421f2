"""The public synchronous API: shutdown, get, wait, put, cancel, cluster queries, and init's
second half (its first is in _init)."""

from __future__ import annotations

import atexit
import functools
import itertools
import operator
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from . import _core
from ._core import Identity, ObjectRef, Runtime, current
from ._core._streams import ObjectRefGenerator
from ._driver._bootstrap import bootstrap_driver
from ._driver._options import InitOptions
from ._early_head import EarlyHead
from ._node import _resources as res

_lock = threading.Lock()
_atexit_registered = False


class InitContext:
    """What ``init()`` returns; also a context manager that shuts down on exit."""

    def __init__(self, runtime: Runtime) -> None:
        ident = runtime.identity
        self.address_info = {
            "address": ident.head_address,
            "session_dir": str(ident.session_dir),
            "node_id": ident.node_id.hex(),
            "job_id": ident.job_id,
        }
        self.dashboard_url = ident.dashboard_url or None  # init(include_dashboard=True)

    def __enter__(self) -> InitContext:
        return self

    def __exit__(self, *exc: object) -> None:
        shutdown()

    def __getitem__(self, key: str) -> Any:
        return self.address_info[key]


def start(address: str | None, early: EarlyHead | None, options: dict[str, Any]) -> InitContext:
    """``init()`` once the runtime is imported: check ``options`` (its keyword arguments),
    start the runtime, and start or join the cluster (``early``: its head, already started)."""
    global _atexit_registered
    checked = InitOptions.check(
        address,
        num_cpus=options.get("num_cpus"),
        num_gpus=options.get("num_gpus"),
        resources=options.get("resources"),
        memory=options.get("memory"),
        object_store_memory=options.get("object_store_memory"),
        namespace=options.get("namespace"),
        runtime_env=options.get("runtime_env"),
        log_to_driver=options.get("log_to_driver", True),
        include_dashboard=options.get("include_dashboard"),
        dashboard_port=options.get("dashboard_port", 8265),
        dashboard_host=options.get("dashboard_host"),
        object_spilling_directory=options.get("object_spilling_directory"),
        object_spilling_limit=options.get("object_spilling_limit"),
        _system_config=options.get("_system_config"),
    )
    with _lock:
        existing = _core._runtime._current
        if existing is not None and not existing.closed:
            if existing.identity.mode == "worker" or options.get("ignore_reinit_error"):
                return InitContext(existing)
            raise RuntimeError("actorlib.init() was already called; pass ignore_reinit_error=True to allow this")
        runtime = Runtime(Identity(mode="driver", namespace=checked.namespace, env=checked.env_vars))
        runtime.start(functools.partial(bootstrap_driver, options=checked, early=early))
        _core.set_current(runtime)
        _report_metrics_recorded_before()
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    return InitContext(runtime)


def _report_metrics_recorded_before() -> None:
    """Metrics recorded before init() (or before a shutdown() and this init()) go to the new node."""
    report = sys.modules.get("actorlib._app_metrics._report")  # loaded once a metric was recorded
    if report is not None:
        report.report_to_new_runtime()


def shutdown() -> None:
    """Disconnect, and stop the local cluster if init() started one. Idempotent."""
    with _lock:
        runtime = _core._runtime._current
        if runtime is None or runtime.identity.mode == "worker":
            return
        _core.set_current(None)
    runtime.stop()


def is_initialized() -> bool:
    runtime = _core._runtime._current
    return runtime is not None and not runtime.closed


def get(object_refs: ObjectRef | Sequence[ObjectRef], *, timeout: float | None = None) -> Any:
    """The value of a ref, or the values of a list of refs, blocking until ready.

    Raises the task's error (a TaskError that is also an instance of the
    original exception), GetTimeoutError after ``timeout`` seconds, or a
    system error (WorkerCrashedError, TaskCancelledError, ObjectLostError...).
    """
    runtime = current()
    if isinstance(object_refs, ObjectRef):
        return runtime.get([object_refs], _timeout(timeout))[0]
    refs = _ref_list(object_refs, "get")
    return runtime.get(refs, _timeout(timeout))


def wait(
    object_refs: Sequence[ObjectRef],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """Block until ``num_returns`` refs are ready or ``timeout`` passes.

    Returns ``(ready, not_ready)``, each in the order of ``object_refs``;
    ``ready`` has at most ``num_returns`` refs.
    """
    runtime = current()
    checked = type(object_refs) is NotReady and object_refs.checked
    refs = object_refs if checked else _unique_refs(object_refs)
    if not isinstance(num_returns, int) or not 0 <= num_returns <= len(refs):
        raise ValueError(f"num_returns must be between 0 and {len(refs)} (the number of refs), got {num_returns!r}")
    ready, rest = runtime.wait(refs, num_returns, _timeout(timeout), fresh=not checked)
    return ready, NotReady(rest)


class NotReady(list):  # type: ignore[type-arg]
    """The not-ready refs wait() returns: a plain list, except that it remembers that
    wait() checked it (ObjectRefs only, none twice, their borrowed objects being
    fetched) until something is put into it.

    Checking costs a hash per ref, which ``while pending: ready, pending = wait(pending)``
    would pay on every call (quadratic in all); passed back unchanged, it is not
    checked again. Removing items keeps it checked; adding or replacing any does not.
    """

    __slots__ = ("checked",)

    def __init__(self, refs: Any = ()) -> None:
        super().__init__(refs)
        self.checked = True

    def _changed(self) -> None:
        self.checked = False

    def append(self, item: Any) -> None:
        self._changed()
        super().append(item)

    def extend(self, items: Any) -> None:
        self._changed()
        super().extend(items)

    def insert(self, index: Any, item: Any) -> None:
        self._changed()
        super().insert(index, item)

    def __setitem__(self, index: Any, item: Any) -> None:
        self._changed()
        super().__setitem__(index, item)

    def __iadd__(self, items: Any) -> NotReady:
        self._changed()
        return super().__iadd__(items)  # type: ignore[return-value]

    def __imul__(self, times: Any) -> NotReady:
        self._changed()
        return super().__imul__(times)  # type: ignore[return-value]

    def __reduce__(self) -> Any:
        return (list, (list(self),))  # elsewhere, it is a plain list


def _unique_refs(refs: Any) -> list[ObjectRef]:
    """``refs`` checked for wait(): ObjectRefs, none twice."""
    checked = _ref_list(refs, "wait")
    if len(set(map(_ID, checked))) != len(checked):
        raise ValueError("wait() was given the same ObjectRef more than once")
    return checked


_ID = operator.attrgetter("_id")
CANCEL_SEND_WAIT = 5.0  # seconds cancel() of an actor call waits for the runtime thread to send it


def put(value: Any) -> ObjectRef:
    """Store ``value`` (a snapshot) in the cluster; return a ref to it. Raises ObjectStoreFullError."""
    if isinstance(value, ObjectRef):
        raise TypeError("put() of an ObjectRef is not allowed; pass the ref itself")
    return current().put(value)


def cancel(object_ref: ObjectRef | ObjectRefGenerator, *, force: bool = False, recursive: bool = True) -> None:
    """Cancel the task producing ``object_ref``: a queued task never runs; a running one is
    interrupted (``force``: its worker is killed). ``get`` then raises TaskCancelledError.
    For a streaming generator (an ObjectRefGenerator), as in Ray: unless its task ended
    already, the next item it gives raises TaskCancelledError and it stops there (items
    that came but were not taken are dropped).
    ``recursive`` (Ray's default): the tasks it submitted are cancelled too (with ``force``
    they die with its worker, which held their leases). Cancelled tasks are not retried.
    Only the submitting process can cancel.

    An actor call that has not started never runs; one running in an async actor is
    cancelled (its coroutine gets Cancelled/CancelledError); a running sync method goes on,
    and sees ``get_runtime_context().is_canceled()`` turn True. ``force`` is refused for
    actor calls (ValueError), as in Ray."""
    stream = isinstance(object_ref, ObjectRefGenerator)
    if not stream and not isinstance(object_ref, ObjectRef):
        raise TypeError(f"cancel() takes an ObjectRef or an ObjectRefGenerator, got {type(object_ref).__name__}")
    runtime = current()
    task_id = object_ref._task_id if stream else object_ref.task_id()  # type: ignore[union-attr]
    actor_call = runtime.actors.is_call(task_id)
    if force and actor_call:
        raise ValueError("force=True is not supported for actor calls (as in Ray): use actorlib.kill(actor) to stop the actor")
    taken = object_ref._next if stream else 0  # type: ignore[union-attr]
    sent = threading.Event()

    def cancel_now() -> None:
        try:
            if stream:
                runtime.streams.cancel(task_id, taken)
            if not runtime.actors.cancel(task_id, bool(recursive)):
                runtime.submitter.cancel(task_id, force, bool(recursive))
        finally:
            sent.set()

    runtime.soon(cancel_now)
    # Returns once the cancel is on its way to an actor (after a call ahead of it ends, the
    # actor has it), and once a stream is cut (the generator's next item is the error).
    if actor_call or stream:
        sent.wait(CANCEL_SEND_WAIT)


def nodes() -> list[dict[str, Any]]:
    """The cluster's nodes, as Ray describes them (NodeID, Alive, Resources, ...)."""
    views = _cluster()
    return [
        {
            "NodeID": view.node_id.hex(),
            "Alive": view.alive,
            "alive": view.alive,
            "NodeManagerAddress": view.ip,
            "NodeManagerHostname": view.hostname,
            "NodeName": view.ip,
            "Resources": {**view.total, f"node:{view.ip}": 1.0},
            "IsHead": view.is_head,
            "Labels": dict(view.labels),
            "pid": view.pid,
        }
        for view in views
    ]


def cluster_resources() -> dict[str, float]:
    """Total resources of the live nodes."""
    return _sum(view.total for view in _cluster() if view.alive)


def available_resources() -> dict[str, float]:
    """Resources not held by leases right now."""
    return _sum(view.available for view in _cluster() if view.alive)


def _cluster() -> list[Any]:
    runtime = current()
    return runtime.call(runtime.head.cluster).nodes


def _sum(shapes: Any) -> dict[str, float]:
    total: dict[str, float] = {}
    for shape in shapes:
        res.add(total, shape)
    return {name: qty for name, qty in total.items() if qty}


def _timeout(timeout: float | None) -> float | None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"timeout must be None or a non-negative number of seconds, got {timeout!r}")
    return timeout


def _ref_list(refs: Any, where: str) -> list[ObjectRef]:
    if not isinstance(refs, (list, tuple)):
        raise TypeError(f"{where}() takes an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}")
    if not all(map(isinstance, refs, itertools.repeat(ObjectRef))):
        wrong = next(ref for ref in refs if not isinstance(ref, ObjectRef))
        raise TypeError(f"{where}() takes ObjectRefs, got an item of type {type(wrong).__name__}")
    return list(refs)
