"""Receive buffers for remote objects: reused once free, never while a view of them lives."""

from __future__ import annotations

import numpy as np

from actorlib._store import _remote
from actorlib._store._remote import Landing

MIB = 1 << 20


def address(view: memoryview) -> int:
    return np.frombuffer(view, dtype=np.uint8).ctypes.data


def test_a_buffer_a_value_still_uses_is_not_reused():
    landing = Landing()
    first = landing.take(8 * MIB)
    where = address(first)
    kept = np.frombuffer(first, dtype=np.uint8)  # a value read into it is still alive
    del first
    assert address(landing.take(8 * MIB)) != where
    del kept
    assert address(landing.take(8 * MIB)) == where  # free again: its pages are reused
    smaller = landing.take(5 * MIB)  # a free buffer up to twice the size serves
    assert len(smaller) == 5 * MIB and len(landing._held) == 2


def test_reuse_is_exact_about_what_is_free():
    landing = Landing()
    a = landing.take(4 * MIB)
    a_at = address(a)
    del a
    b = landing.take(4 * MIB)
    assert address(b) == a_at  # free: reused
    c = landing.take(4 * MIB)
    assert address(c) != a_at  # b holds it: a new one
    tiny = landing.take(1000)
    assert len(tiny) == 1000 and len(landing._held) == 2  # small reads are not pooled
    assert landing.take(64 * MIB) is not None and len(landing._held) == 3  # too big for either: new


def test_idle_buffers_are_unmapped_and_the_pool_is_bounded(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(_remote.time, "monotonic", lambda: now[0])
    landing = Landing()
    held = landing.take(4 * MIB)
    landing.take(4 * MIB)  # free at once
    assert len(landing._held) == 2
    now[0] += Landing.IDLE + 1
    landing.trim()
    assert len(landing._held) == 1  # the free one went; the one in use stays, however old
    del held
    landing.trim()
    assert landing._held == []
    monkeypatch.setattr(Landing, "POOL_BYTES", 10 * MIB)
    for _ in range(4):
        landing.take(4 * MIB)  # each free at once: the pool keeps no more than 10 MiB
    assert sum(len(buffer) for buffer, _ in landing._held) <= 10 * MIB
