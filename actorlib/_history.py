"""Bounded histories: the last N records of things that ended (dead actors, removed
placement groups, dead nodes, exited workers), kept for listing and late questions."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class History(Generic[K, V]):
    """At most ``limit`` records by key, in the order they were added; adding one more
    forgets the oldest. Memory stays flat however many things come and go."""

    def __init__(self, limit: int) -> None:
        if limit < 0:
            raise ValueError(f"a history keeps at least 0 records, not {limit}")
        self.limit = limit
        self._records: OrderedDict[K, V] = OrderedDict()

    def add(self, key: K, record: V) -> None:
        """Record (or replace, as the newest) ``key``'s record; forget the oldest beyond the limit."""
        records = self._records
        records[key] = record
        records.move_to_end(key)
        while len(records) > self.limit:
            records.popitem(last=False)

    def get(self, key: K) -> V | None:
        return self._records.get(key)

    def pop(self, key: K) -> V | None:
        return self._records.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._records

    def __len__(self) -> int:
        return len(self._records)

    def values(self) -> list[V]:
        """The records, oldest first."""
        return list(self._records.values())

    def __iter__(self) -> Iterator[K]:
        return iter(self._records)
