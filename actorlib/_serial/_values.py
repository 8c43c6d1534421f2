"""User values: pickle protocol 5 via cloudpickle, with large buffers kept out of band.

Serialization records every ObjectRef it meets (``refs``), so the owner can
pin refs that escape into other processes.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any


from ._pickler import custom_reducers, dumps
from ..exceptions import SerializationError
from .._wire import Inline

INLINE_THRESHOLD = 100 * 1024  # bytes; larger values go to the shared-memory store

_context = threading.local()
_NO_BUFFERS: list[bytes] = []  # shared by every Inline without out-of-band buffers (never changed)


class Serialized:
    """A pickled value: the pickle stream, its out-of-band buffers, the refs inside."""

    __slots__ = ("data", "buffers", "refs", "size")

    def __init__(self, data: bytes, buffers: list[pickle.PickleBuffer], refs: list[Any]) -> None:
        self.data = data
        self.buffers = buffers
        self.refs = refs
        self.size = len(data) + sum(len(b.raw()) for b in buffers)

    @property
    def inline(self) -> bool:
        return self.size <= INLINE_THRESHOLD

    def to_inline(self) -> Inline:
        if not self.buffers:
            return Inline(data=self.data, buffers=_NO_BUFFERS)
        return Inline(data=self.data, buffers=[bytes(b.raw()) for b in self.buffers])


def record_ref(ref: Any) -> None:
    """Called by ObjectRef.__reduce__: note a ref being serialized."""
    refs = getattr(_context, "refs", None)
    if refs is not None:
        refs.append(ref)


_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})


def serialize(value: Any, *, what: str = "value") -> Serialized:
    """Pickle ``value``. Raises SerializationError naming the part that cannot be pickled."""
    if type(value) in _SCALARS:  # the C pickler is ~10x faster than cloudpickle's
        return Serialized(pickle.dumps(value, protocol=5), [], [])
    buffers: list[pickle.PickleBuffer] = []
    outer = getattr(_context, "refs", None)
    _context.refs = refs = []
    try:
        data = dumps(value, buffer_callback=buffers.append)
    except Exception as exc:
        raise SerializationError(_describe_failure(value, what, exc)) from exc
    finally:
        _context.refs = outer
    return Serialized(data, buffers, refs)


def deserialize(data: bytes | memoryview, buffers: list[Any] = ()) -> Any:  # type: ignore[assignment]
    """Unpickle a value. Raises SerializationError if it cannot be rebuilt here."""
    try:
        return pickle.loads(data, buffers=buffers)
    except Exception as exc:
        raise SerializationError(f"could not deserialize a value: {type(exc).__name__}: {exc}") from exc


def deserialize_inline(value: Inline) -> Any:
    return deserialize(value.data, value.buffers)


def _describe_failure(value: Any, what: str, exc: Exception) -> str:
    path, culprit = find_unpicklable(value, what)
    return f"could not serialize {path}: {_short_repr(culprit)} ({type(exc).__name__}: {exc})"


def find_unpicklable(value: Any, path: str, depth: int = 4) -> tuple[str, Any]:
    """The innermost part of ``value`` (and its path) that cannot be pickled."""
    if depth == 0 or type(value) in custom_reducers:  # its registered serializer failed, not a part
        return path, value
    for sub_path, item in _parts(value, path):
        try:
            dumps(item)
        except Exception:
            return find_unpicklable(item, sub_path, depth - 1)
    return path, value


def _parts(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, (list, tuple)):
        return [(f"{path}[{i}]", v) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return [(f"{path}[{k!r}]", v) for k, v in value.items()]
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return [(f"{path}.{k}", v) for k, v in attrs.items()]
    return []


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 120 else text[:117] + "..."
