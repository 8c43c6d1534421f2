"""Functions and classes exported once, by content hash, and cached where they run."""

from __future__ import annotations

import hashlib
import threading
from typing import Any


from ._pickler import dumps
from ..exceptions import SerializationError
from ._values import deserialize


class Exported:
    """A pickled callable and its id (a hash of the pickle)."""

    __slots__ = ("fn_id", "blob", "name")

    def __init__(self, fn_id: bytes, blob: bytes, name: str) -> None:
        self.fn_id = fn_id
        self.blob = blob
        self.name = name


def export(fn: Any, name: str) -> Exported:
    """Pickle ``fn`` by value (cloudpickle); raise SerializationError naming it."""
    try:
        blob = dumps(fn)
    except Exception as exc:
        raise SerializationError(f"could not serialize {name}: {type(exc).__name__}: {exc}") from exc
    return Exported(hashlib.sha256(blob).digest()[:16], blob, name)


class FunctionCache:
    """Callables this process has been sent, by id."""

    def __init__(self) -> None:
        self._fns: dict[bytes, Any] = {}
        self._lock = threading.Lock()

    def get(self, fn_id: bytes, blob: bytes | None) -> Any:
        """The callable for ``fn_id``, loading ``blob`` the first time. Raises KeyError if unknown."""
        fn = self._fns.get(fn_id)
        if fn is None:
            if blob is None:
                raise KeyError(fn_id)
            fn = deserialize(blob)
            with self._lock:
                self._fns[fn_id] = fn
        return fn
