"""The head's durable state, behind a small interface (SQLite in the session directory).

What survives a head restart: detached actors (their specs, to find them
again or re-create them), placement groups (with the node of each bundle),
the job counter, how many times a head started (actor incarnations count on from there), and
submitted jobs' records (encoded by ``_jobs``). Nodes are not stored: they register again on
their own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import msgspec

from .._wire import ActorSpec, PlacementGroupView

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actors (
    actor_id BLOB PRIMARY KEY,
    spec BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS groups (
    pg_id BLOB PRIMARY KEY,
    view BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    submission_id TEXT PRIMARY KEY,
    record BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""


class StateStore(Protocol):
    """What the head keeps across restarts (another backend can implement this)."""

    def save_actor(self, spec: ActorSpec) -> None: ...
    def forget_actor(self, actor_id: bytes) -> None: ...
    def actors(self) -> list[ActorSpec]: ...
    def save_group(self, view: PlacementGroupView) -> None: ...
    def forget_group(self, pg_id: bytes) -> None: ...
    def groups(self) -> list[PlacementGroupView]: ...
    def next_job(self) -> int: ...
    def next_start(self) -> int: ...
    def save_job(self, submission_id: str, record: bytes) -> None: ...
    def forget_job(self, submission_id: str) -> None: ...
    def jobs(self) -> list[bytes]: ...
    def close(self) -> None: ...


class SqliteState:
    """The default store: one SQLite file, written synchronously (small, rare writes)."""

    def __init__(self, path: Path) -> None:
        import sqlite3  # only a standalone cluster's head keeps state: workers never load it

        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(ActorSpec)
        self._groups = msgspec.msgpack.Decoder(PlacementGroupView)

    def save_actor(self, spec: ActorSpec) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO actors (actor_id, spec) VALUES (?, ?)", (spec.actor_id, self._encoder.encode(spec))
        )

    def forget_actor(self, actor_id: bytes) -> None:
        self._db.execute("DELETE FROM actors WHERE actor_id = ?", (actor_id,))

    def actors(self) -> list[ActorSpec]:
        return [self._decoder.decode(row[0]) for row in self._db.execute("SELECT spec FROM actors")]

    def save_group(self, view: PlacementGroupView) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO groups (pg_id, view) VALUES (?, ?)", (view.pg_id, self._encoder.encode(view))
        )

    def forget_group(self, pg_id: bytes) -> None:
        self._db.execute("DELETE FROM groups WHERE pg_id = ?", (pg_id,))

    def groups(self) -> list[PlacementGroupView]:
        return [self._groups.decode(row[0]) for row in self._db.execute("SELECT view FROM groups")]

    def next_job(self) -> int:
        return self._next("job")

    def next_start(self) -> int:
        """1 for the first head of this session, 2 for the one its daemon started after it, ..."""
        return self._next("head_start")

    def _next(self, name: str) -> int:
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO counters (name, value) VALUES (?, 0)", (name,))
            self._db.execute("UPDATE counters SET value = value + 1 WHERE name = ?", (name,))
            (value,) = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(value)

    def save_job(self, submission_id: str, record: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO jobs (submission_id, record) VALUES (?, ?)", (submission_id, record))

    def forget_job(self, submission_id: str) -> None:
        self._db.execute("DELETE FROM jobs WHERE submission_id = ?", (submission_id,))

    def jobs(self) -> list[bytes]:
        return [bytes(row[0]) for row in self._db.execute("SELECT record FROM jobs ORDER BY rowid")]

    def close(self) -> None:
        self._db.close()


class MemoryState:
    """A store that forgets everything (embedded local clusters have nothing to recover)."""

    def __init__(self) -> None:
        self._actors: dict[bytes, ActorSpec] = {}
        self._groups: dict[bytes, PlacementGroupView] = {}
        self._jobs = 0
        self._job_records: dict[str, bytes] = {}

    def save_actor(self, spec: ActorSpec) -> None:
        self._actors[spec.actor_id] = spec

    def forget_actor(self, actor_id: bytes) -> None:
        self._actors.pop(actor_id, None)

    def actors(self) -> list[ActorSpec]:
        return list(self._actors.values())

    def save_group(self, view: PlacementGroupView) -> None:
        self._groups[view.pg_id] = view

    def forget_group(self, pg_id: bytes) -> None:
        self._groups.pop(pg_id, None)

    def groups(self) -> list[PlacementGroupView]:
        return list(self._groups.values())

    def next_job(self) -> int:
        self._jobs += 1
        return self._jobs

    def next_start(self) -> int:
        return 1  # nothing survives this head

    def save_job(self, submission_id: str, record: bytes) -> None:
        self._job_records[submission_id] = record

    def forget_job(self, submission_id: str) -> None:
        self._job_records.pop(submission_id, None)

    def jobs(self) -> list[bytes]:
        return list(self._job_records.values())

    def close(self) -> None:
        pass
