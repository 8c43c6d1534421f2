"""Small helpers Ray has in ``ray.util``: results as they complete, a bounded map, the
node's IP address, finding what in an object cannot be pickled, and log_once."""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import cloudpickle

DEFAULT_CHUNK_SIZE = 10
DEFAULT_BACKPRESSURE_SIZE = 100


def _batches(refs: list[Any], chunk_size: int, yield_obj_refs: bool, wait_options: dict[str, Any]) -> Iterator[Any]:
    import actorlib

    if chunk_size < 1:
        raise ValueError(f"chunk_size must be 1 or more, got {chunk_size}")
    if "num_returns" in wait_options:
        raise ValueError("pass chunk_size, not num_returns: it is the number of results waited for at a time")
    while refs:
        ready, refs = actorlib.wait(refs, num_returns=min(chunk_size, len(refs)), **wait_options)
        yield from (ready if yield_obj_refs else actorlib.get(ready))


def as_completed(
    refs: Sequence[Any], *, chunk_size: int = DEFAULT_CHUNK_SIZE, yield_obj_refs: bool = False, **wait_options: Any
) -> Iterator[Any]:
    """Yield the values of ``refs`` (or the refs, with ``yield_obj_refs``) as they complete,
    ``chunk_size`` at a time, instead of waiting for all of them as ``get(refs)`` does.

    Other keyword arguments go to :func:`actorlib.wait` (``timeout``, ``fetch_local``).
    """
    return _batches(list(refs), chunk_size, yield_obj_refs, wait_options)


def map_unordered(
    fn: Any,
    items: Iterable[Any],
    *,
    backpressure_size: int | None = DEFAULT_BACKPRESSURE_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    yield_obj_refs: bool = False,
    **wait_options: Any,
) -> Iterator[Any]:
    """Run ``fn.remote(item)`` for each item, with at most ``backpressure_size`` tasks
    pending at once (None: no limit), and yield results as they complete, in no set order."""
    import actorlib

    if backpressure_size is not None and backpressure_size < 1:
        raise ValueError(f"backpressure_size must be 1 or more (or None), got {backpressure_size}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be 1 or more, got {chunk_size}")
    if "num_returns" in wait_options:
        raise ValueError("pass chunk_size, not num_returns: it is the number of results waited for at a time")
    pending: list[Any] = []
    for item in items:
        if backpressure_size is not None and len(pending) >= backpressure_size:
            ready, pending = actorlib.wait(pending, num_returns=min(chunk_size, len(pending)), **wait_options)
            yield from (ready if yield_obj_refs else actorlib.get(ready))
        pending.append(fn.remote(item))
    yield from _batches(pending, chunk_size, yield_obj_refs, wait_options)


def get_node_ip_address() -> str:
    """The IP address of the node this process runs on: the one the cluster knows it by
    inside a task or actor, else this driver's node's, else loopback before ``init()``."""
    ip = os.environ.get("ACTORLIB_NODE_IP")
    if ip:
        return ip
    import actorlib

    if actorlib.is_initialized():
        node_id = actorlib.get_runtime_context().get_node_id()
        for node in actorlib.nodes():
            if node["NodeID"] == node_id and node["NodeManagerAddress"]:
                return str(node["NodeManagerAddress"])
    return "127.0.0.1"


_logged: set[str] = set()


def log_once(key: str) -> bool:
    """True the first time it is called with ``key`` in this process, False after."""
    if key in _logged:
        return False
    _logged.add(key)
    return True


class FailureTuple:
    """One part that cannot be pickled: the object, its name, and what holds it."""

    __slots__ = ("obj", "name", "parent")

    def __init__(self, obj: Any, name: str, parent: Any) -> None:
        self.obj, self.name, self.parent = obj, name, parent

    def __repr__(self) -> str:
        return f"FailureTuple(name={self.name!r}, obj={self.obj!r}, parent={_name_of(self.parent) if self.parent is not None else None})"


def inspect_serializability(
    base_obj: Any, name: str | None = None, depth: int = 3, print_file: TextIO | None = None
) -> tuple[bool, set[FailureTuple]]:
    """Whether ``base_obj`` can be pickled (as actorlib sends it: cloudpickle) and, if not, the
    innermost parts that cannot, found by looking into a function's closure and the globals
    it uses, and into an object's attributes, up to ``depth`` levels. Prints what it finds."""
    out = print_file if print_file is not None else sys.stdout
    failures: set[FailureTuple] = set()
    ok = _inspect(base_obj, name or _name_of(base_obj), depth, None, failures, out, 0)
    if not ok:
        print(f"{'=' * 60}\nThese parts cannot be pickled:", file=out)
        for failure in sorted(failures, key=lambda f: f.name):
            print(f"    {failure.name} (held by {_name_of(failure.parent)})" if failure.parent is not None else f"    {failure.name}", file=out)
    return ok, failures


def _name_of(obj: Any) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__


def _picklable(obj: Any) -> tuple[bool, str]:
    try:
        cloudpickle.dumps(obj)
    except Exception as exc:  # what pickling raises varies: TypeError, PicklingError, ...
        return False, f"{type(exc).__name__}: {exc}"
    return True, ""


def _members(obj: Any) -> list[tuple[str, Any]]:
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        try:
            found = inspect.getclosurevars(obj)
        except (TypeError, ValueError):
            return []
        return [*found.nonlocals.items(), *found.globals.items()]
    if inspect.isclass(obj):
        return [(k, v) for k, v in vars(obj).items() if not k.startswith("__")]
    state = getattr(obj, "__dict__", None)
    return list(state.items()) if isinstance(state, dict) else []


def _inspect(obj: Any, name: str, depth: int, parent: Any, failures: set[FailureTuple], out: TextIO, level: int) -> bool:
    ok, why = _picklable(obj)
    if ok:
        return True
    indent = "    " * level
    print(f"{indent}{name} cannot be pickled: {why}", file=out)
    found_inner = False
    if depth > 0:
        for member_name, member in _members(obj):
            if not _inspect(member, member_name, depth - 1, obj, failures, out, level + 1):
                found_inner = True
    if not found_inner:  # nothing inside explains it: this is the culprit
        failures.add(FailureTuple(obj, name, parent))
    return False
