"""The object table: every object this process owns or borrows, its value once known, and its waiters.

Values are completed on the runtime's Trio thread and read from any thread.
Reference counts are kept per object id; ``ObjectRef.__del__`` only queues
a decrement (it may run anywhere, even inside this module), and the Trio
thread applies queued decrements with :meth:`ObjectTable.collect`.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .._wire import Inline, ObjectRefInfo, Stored, Value

log = logging.getLogger("actorlib.core")


class Entry(msgspec.Struct, gc=False, eq=False):
    """One object: its value (None while pending), waiters, and who knows of it.

    A struct the garbage collector does not track (16 bytes less than a slotted class, for
    every pending task's result): nothing it holds refers back to it."""

    owned: bool
    owner: str
    value: Value | None = None
    waiters: list[Any] | None = None
    count: int = 0
    escaped: bool = False  # owned: pinned for good; borrowed: the owner was asked to pin it
    fetching: bool = False
    borrowers: set[Any] | None = None  # owned: channels of processes borrowing it
    registered: bool = False  # borrowed: this process is among the owner's borrowers


class ThreadWaiter:
    """Blocks a thread until ``remaining`` entries have completed."""

    __slots__ = ("_lock", "remaining")

    def __init__(self, remaining: int) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self.remaining = remaining

    def notify(self) -> None:
        self.remaining -= 1
        if self.remaining == 0:
            self._lock.release()

    def wait(self, timeout: float | None) -> bool:
        """True once notified enough; False on timeout."""
        return self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))


class CompletionWatcher:
    """Wakes a thread when any object completes, or (once ``ids`` is set) one of ``ids``.

    What a blocked ``wait()`` registers with the table: one object, not one waiter
    per pending entry, so the ``while pending: ready, pending = wait(pending)`` loop
    costs no registration per entry and leaves nothing behind in the entries.
    """

    __slots__ = ("_event", "ids")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.ids: set[bytes] | frozenset[bytes] | None = None

    def notify(self, object_id: bytes) -> None:
        ids = self.ids
        if ids is None or object_id in ids:
            self._event.set()

    def wait(self, timeout: float | None) -> bool:
        """Block until notified (True) or ``timeout`` (False); then re-arm. A completion
        after this returns wakes the next call: values are set before watchers are told."""
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke


class CallbackWaiter:
    """Calls ``callback()`` once, when the entry completes (on the runtime thread)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def notify(self) -> None:
        self.callback()


class LoopWaiter:
    """Wakes a task in another event loop (a user's Trio or asyncio loop)."""

    __slots__ = ("_wake",)

    def __init__(self, wake: Callable[[], None]) -> None:
        self._wake = wake

    def notify(self) -> None:
        try:
            self._wake()
        except (RuntimeError, trio.RunFinishedError):
            pass  # that loop has ended; nobody is waiting any more


class ObjectTable:
    """Objects known to this process, by id."""

    def __init__(self) -> None:
        self._entries: dict[bytes, Entry] = {}
        self._lock = threading.Lock()
        self._decrefs: deque[bytes] = deque()
        # Entries whose count reached zero while something still waited on them: looked at
        # again by collect() once that wait is over (completed, timed out or cancelled).
        self._recheck: deque[bytes] = deque()
        self._watchers: tuple[CompletionWatcher, ...] = ()
        # Ids of the entries that have a value: wait() finds the ready among its refs with C
        # loops over this set, not a Python loop over entries (read without the lock: set
        # lookups are atomic, and an id is added only once its value is set).
        self.ready: set[bytes] = set()
        self.known = self._entries.keys()  # a live view of every id in the table
        self.completions = 0  # values set so far: a wait that saw none new need not look again
        self._borrowed_by: dict[Any, set[bytes]] = {}  # owned objects each borrower channel holds
        self.on_free: Callable[[list[tuple[bytes, Stored]]], None] = lambda freed: None  # (object id, where it is stored)
        self.on_queued: Callable[[], None] = _nothing  # something was queued for collect() (any thread)
        # (owner address, object id) of borrowed objects: no longer held here / passed on uncounted
        self.on_release: Callable[[list[tuple[str, bytes]]], None] = lambda released: None
        self.on_pin: Callable[[list[tuple[str, bytes]]], None] = lambda pinned: None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, object_id: bytes) -> Entry | None:
        return self._entries.get(object_id)

    def add(self, object_id: bytes, *, owned: bool, owner: str, value: Value | None = None) -> Entry:
        """Register an object (idempotent) and count one reference to it."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None:
                entry = self._entries[object_id] = Entry(owned, owner)
                entry.value = value
                if value is not None:
                    self.ready.add(object_id)
            entry.count += 1
            return entry

    def incref(self, object_id: bytes, owner: str) -> Entry:
        return self.add(object_id, owned=False, owner=owner)

    @property
    def idle(self) -> bool:
        """No reference drop or recheck is queued."""
        return not self._decrefs and not self._recheck

    def decref_later(self, object_id: bytes) -> None:
        """Queue one reference drop; safe from any thread and from ``__del__``."""
        self._decrefs.append(object_id)
        self.on_queued()

    def complete(self, object_id: bytes, value: Value) -> bool:
        """Set the value of a pending object and wake its waiters. False if unknown or done."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None or entry.value is not None:
                return False
            entry.value = value
            self.ready.add(object_id)
            self.completions += 1
            waiters, entry.waiters = entry.waiters, None
            if waiters and entry.count <= 0:
                self._recheck.append(object_id)  # only its waiters kept it: free it now
                self.on_queued()
        for waiter in waiters or ():
            try:
                waiter.notify()
            except Exception:  # one broken waiter must not stall the others (or the loop)
                log.exception("a waiter of object %s failed", object_id.hex())
        for watcher in self._watchers:
            watcher.notify(object_id)
        return True

    def wait_on(self, entry: Entry, waiter: Any) -> bool:
        """Register ``waiter`` on a pending entry; False (not registered) if it is already done."""
        with self._lock:
            if entry.value is not None:
                return False
            if entry.waiters is None:
                entry.waiters = []
            entry.waiters.append(waiter)
            return True

    def unwait(self, object_ids: list[bytes], waiter: Any) -> None:
        """Take ``waiter`` off these objects' entries (it stopped waiting: timed out or was
        cancelled), so that neither it nor the entries it kept are left behind."""
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                waiters = entry.waiters if entry is not None else None
                if not waiters or waiter not in waiters:
                    continue
                waiters.remove(waiter)
                if not waiters:
                    entry.waiters = None  # type: ignore[union-attr]
                    if entry.count <= 0:  # type: ignore[union-attr]
                        self._recheck.append(object_id)
                        self.on_queued()

    def watch(self) -> CompletionWatcher:
        """A watcher woken by completions until :meth:`unwatch` (see CompletionWatcher)."""
        watcher = CompletionWatcher()
        with self._lock:
            self._watchers = (*self._watchers, watcher)
        return watcher

    def unwatch(self, watcher: CompletionWatcher) -> None:
        with self._lock:
            self._watchers = tuple(w for w in self._watchers if w is not watcher)

    def wait_many(self, entries: list[Entry], want: int | None = None) -> ThreadWaiter | None:
        """One waiter on the pending entries, woken once ``want`` entries in all are done
        (None: all of them). Returns None if that already holds."""
        with self._lock:
            pending = [entry for entry in entries if entry.value is None]
            need = len(pending) if want is None else min(want - (len(entries) - len(pending)), len(pending))
            if need <= 0:
                return None
            waiter = ThreadWaiter(need)
            for entry in pending:
                if entry.waiters is None:
                    entry.waiters = []
                entry.waiters.append(waiter)
            return waiter

    def stored_on(self, node_id: bytes) -> list[tuple[bytes, Stored]]:
        """Owned objects whose value is kept only in ``node_id``'s store."""
        with self._lock:
            return [
                (object_id, entry.value)
                for object_id, entry in self._entries.items()
                if entry.owned and type(entry.value) is Stored and entry.value.node_id == node_id
            ]

    def replace(self, object_id: bytes, old: Value, new: Value | None) -> bool:
        """Swap a completed value (a lost one) for ``new``: an error, or None to make it pending
        again. False if the value is no longer ``old``."""
        with self._lock:
            entry = self._entries.get(object_id)
            if entry is None or entry.value is not old:
                return False
            entry.value = new
            if new is None:
                self.ready.discard(object_id)
            return True

    def mark_escaped(self, object_ids: list[bytes]) -> None:
        """Refs to these objects were handed on where no borrower is counted (a put value, a
        return value, an actor call): pin them for their owner's lifetime (see docs). Borrowed
        ones this process is counted for are pinned by asking their owner."""
        pin: list[tuple[str, bytes]] = []
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is None or entry.escaped:
                    continue
                if entry.owned:
                    entry.escaped = True
                elif entry.registered:
                    entry.escaped = True
                    pin.append((entry.owner, object_id))
        if pin:
            self.on_pin(pin)

    def report(
        self, task_refs: dict[bytes, int], kept: dict[bytes, int], lineage: set[bytes], own_address: str, limit: int
    ) -> tuple[list[ObjectRefInfo], int]:
        """Up to ``limit`` objects this process holds references to, largest first, and how
        many there are (``actorlib memory``). ``task_refs``: how many of each object's refs
        the unfinished tasks this process submitted hold; ``kept``: how many finished tasks kept
        for lineage hold; ``lineage``: owned results whose task is kept to recompute them."""
        with self._lock:
            items = list(self._entries.items())
        out = []
        for object_id, entry in items:
            value = entry.value
            held, by_lineage = task_refs.get(object_id, 0), kept.get(object_id, 0)
            if value is None:
                where, size, stored_id, node = "PENDING", -1, b"", b""
            elif type(value) is Stored:
                where, size, stored_id, node = "STORE", value.size, value.object_id, value.node_id
            elif type(value) is Inline:
                where, size, stored_id, node = "INLINE", len(value.data) + sum(len(b) for b in value.buffers), b"", b""
            else:
                where, size, stored_id, node = "ERROR", len(value.data), b"", b""  # type: ignore[union-attr]
            borrowers = sorted(getattr(channel, "peer", "?") for channel in entry.borrowers or ())
            out.append(ObjectRefInfo(
                object_id=object_id, owned=entry.owned, owner=own_address if entry.owned else entry.owner,
                local_refs=entry.count, task_refs=held, borrowers=borrowers,
                escaped=entry.escaped, where=where, size=size, stored_id=stored_id, stored_node=node,
                lineage=object_id in lineage, lineage_refs=by_lineage,
            ))  # fmt: skip
        out.sort(key=lambda info: -info.size)
        return out[:limit], len(out)

    def borrowing(self, object_ids: list[bytes]) -> list[tuple[str, bytes]]:
        """Of these borrowed objects (held here), those whose owner does not count this process
        yet, as (owner, id); they are marked counted (the caller tells the owners)."""
        wanted = []
        with self._lock:
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is not None and not entry.owned and not entry.registered:
                    entry.registered = True
                    wanted.append((entry.owner, object_id))
        return wanted

    def add_borrowers(self, borrower: Any, object_ids: list[bytes]) -> None:
        """(Owner.) ``borrower`` (its channel) holds refs to these objects: keep them."""
        with self._lock:
            held = self._borrowed_by.setdefault(borrower, set())
            for object_id in object_ids:
                entry = self._entries.get(object_id)
                if entry is not None and entry.owned:
                    if entry.borrowers is None:
                        entry.borrowers = set()
                    entry.borrowers.add(borrower)
                    held.add(object_id)

    def remove_borrowers(self, borrower: Any, object_ids: list[bytes] | None = None) -> None:
        """(Owner.) ``borrower`` dropped these (None: all, it is gone); free what nobody holds."""
        freed: list[tuple[bytes, Stored]] = []
        with self._lock:
            held = self._borrowed_by.get(borrower)
            if held is None:
                return
            dropped = list(held) if object_ids is None else [oid for oid in object_ids if oid in held]
            held.difference_update(dropped)
            if not held:
                del self._borrowed_by[borrower]
            for object_id in dropped:
                entry = self._entries.get(object_id)
                if entry is None or entry.borrowers is None:
                    continue
                entry.borrowers.discard(borrower)
                if not entry.borrowers:
                    entry.borrowers = None
                    self._drop_if_unreferenced(object_id, entry, freed, [])
        if freed:
            self.on_free(freed)

    def collect(self) -> None:
        """Apply queued reference drops; free objects nobody references any more."""
        freed: list[tuple[bytes, Stored]] = []
        released: list[tuple[str, bytes]] = []
        with self._lock:
            while self._decrefs:
                object_id = self._decrefs.popleft()
                entry = self._entries.get(object_id)
                if entry is None:
                    continue
                entry.count -= 1
                self._drop_if_unreferenced(object_id, entry, freed, released)
            while self._recheck:
                object_id = self._recheck.popleft()
                entry = self._entries.get(object_id)
                if entry is not None:
                    self._drop_if_unreferenced(object_id, entry, freed, released)
        if freed:
            self.on_free(freed)
        if released:
            self.on_release(released)

    def _drop_if_unreferenced(
        self, object_id: bytes, entry: Entry, freed: list[tuple[bytes, Stored]], released: list[tuple[str, bytes]]
    ) -> None:
        """(Under the lock.) Forget an entry nothing holds: no ref here, no borrower, not pinned
        and nobody waiting on it. A waiter defers this until its wait is over (complete and
        unwait queue the entry for another look), so an entry is never kept for good."""
        if entry.count > 0 or (entry.escaped and entry.owned) or entry.waiters or entry.borrowers:
            return
        del self._entries[object_id]
        self.ready.discard(object_id)
        if entry.owned:
            if isinstance(entry.value, Stored):
                freed.append((object_id, entry.value))
        elif entry.registered:  # (if it escaped, the owner pinned it first)
            released.append((entry.owner, object_id))

    def fail_pending(self, make_value: Callable[[], Value]) -> None:
        """Complete every pending entry with an error value (the runtime is going away)."""
        pending = [object_id for object_id, entry in list(self._entries.items()) if entry.value is None]
        for object_id in pending:
            self.complete(object_id, make_value())


def _nothing() -> None:
    pass
