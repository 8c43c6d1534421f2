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
    """Callables this process has been sent, by id.

    Pickles are recorded as they arrive (:meth:`remember`) and unpickled on
    first use, so a call that never runs (cancelled while queued) cannot
    lose the one copy of its function's pickle.
    """

    def __init__(self) -> None:
        self._blobs: dict[bytes, bytes] = {}
        self._fns: dict[bytes, Any] = {}
        self._lock = threading.Lock()

    def remember(self, fn_id: bytes, blob: bytes | None) -> None:
        if blob is not None and fn_id not in self._fns:
            self._blobs.setdefault(fn_id, blob)

    def get(self, fn_id: bytes, blob: bytes | None = None) -> Any:
        """The callable for ``fn_id``. Raises KeyError if its pickle never arrived."""
        fn = self._fns.get(fn_id)
        if fn is None:
            with self._lock:
                fn = self._fns.get(fn_id)
                if fn is None:
                    data = blob if blob is not None else self._blobs[fn_id]
                    fn = self._fns[fn_id] = deserialize(data)
                    self._blobs.pop(fn_id, None)
        return fn
