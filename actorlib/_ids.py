"""Ids for objects, tasks, workers, nodes and jobs: cheap, unique, bytes.

An id is a random per-process prefix followed by a counter, so minting one
costs no system call. A task's return objects are its task id plus the
return index.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading

_PREFIX_LEN = 8
_prefix = os.urandom(_PREFIX_LEN)
_counter = itertools.count(1)
_pid = os.getpid()
_lock = threading.Lock()

TASK_ID_LEN = 16
OBJECT_ID_LEN = TASK_ID_LEN + 2


def _reseed() -> None:
    global _prefix, _counter, _pid
    with _lock:
        _prefix, _counter, _pid = os.urandom(_PREFIX_LEN), itertools.count(1), os.getpid()


os.register_at_fork(after_in_child=_reseed)  # a forked child (a zygote's) gets its own prefix


def unique_id() -> bytes:
    """A new 16-byte id, unique across processes and machines."""
    return _prefix + next(_counter).to_bytes(8, "big")


def task_id() -> bytes:
    return unique_id()


def return_id(task: bytes, index: int) -> bytes:
    """The id of return value ``index`` (0-based) of ``task``."""
    return task + (index + 1).to_bytes(2, "big")


def put_id() -> bytes:
    """The id of an object created by ``put`` (index 0 marks "not a return")."""
    return unique_id() + b"\x00\x00"


def short(id: bytes) -> str:
    """A short (12 hex digit) name for an id, for socket names and logs.

    A hash, not a slice: ids from different processes share counter values.
    """
    return hashlib.blake2b(id, digest_size=6).hexdigest()
