"""A fault injector for a running cluster: what ``actorlib chaos`` runs, usable from tests.

Every ``interval`` seconds it picks one random process of a kind and kills it
with SIGKILL, or with ``freeze`` set, stops it with SIGSTOP and resumes it
``freeze`` seconds later (SIGCONT). Kinds:

- ``workers``: task workers (pooled processes that run remote functions);
  leased ones first — those run tasks — else idle ones;
- ``actors``: actor processes;
- ``nodes``: worker nodes' node processes (their workers and actors die with
  them; frozen, only the node process stops, as a hung node daemon would);
- ``head``: the head process (its daemon starts a new one).

Only processes of the cluster at ``address`` are hit, and only those on this
machine: the injector asks the cluster's head which processes it has (the
state API, ``actorlib.util.state``), never scans the process table for them.
Before each signal it checks the pid is still the process the head listed.

    from actorlib.testing.chaos import Chaos

    with Chaos("workers", interval=0.2) as chaos:   # injects from a background thread
        results = actorlib.get(refs)
    print(chaos.report.injections)

``Chaos(...).run()`` injects in the calling thread until ``max`` injections,
``duration`` seconds or ``stop()``. Whatever is frozen when it stops is resumed.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import msgspec
import psutil

from ._targets import KINDS, Target, list_targets, still_listed

__all__ = ["KINDS", "Chaos", "Injection", "Report", "Target", "list_targets"]

POLL = 0.02  # seconds between looks for a target when none was available at an injection's time
MIN_REFRESH = 0.05  # seconds between two listings of the cluster's processes (at least)


class Injection(msgspec.Struct, kw_only=True):
    """One fault: which process got which signal, when (wall clock, ``time.time()``)."""

    time: float
    kind: str
    action: str  # kill | freeze
    pid: int
    node_id: str
    node_ip: str
    name: str = ""
    actor_id: str = ""
    thawed: float | None = None  # freeze: when the process was resumed


class Report(msgspec.Struct, kw_only=True):
    """What an injector did: every injection, and the rounds it found nothing to hit."""

    kind: str
    action: str  # kill | freeze
    interval: float
    max: int | None
    freeze: float | None
    started: float
    ended: float | None = None
    injections: list[Injection] = []
    misses: int = 0  # injection times at which no target was available (it waited for one)
    errors: list[str] = []  # listings that failed (the head away, say), deduplicated, with counts

    @property
    def count(self) -> int:
        return len(self.injections)


class Chaos:
    """Inject faults of one kind into the cluster at ``address`` (see the module's docstring).

    ``max``: stop after that many injections; ``duration``: after that many seconds;
    neither: until ``stop()``. ``seed``: make the choice of targets repeatable.
    ``where``: only targets it returns True for (a class name, a node, ...).
    ``on_injection``: called (in the injecting thread) after each injection.
    """

    def __init__(
        self,
        kind: str,
        *,
        interval: float = 1.0,
        max: int | None = None,
        duration: float | None = None,
        freeze: float | None = None,
        address: str | None = None,
        seed: int | None = None,
        where: Callable[[Target], bool] | None = None,
        on_injection: Callable[[Injection], None] | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown target kind {kind!r}: expected one of {', '.join(KINDS)}")
        if interval < 0:
            raise ValueError(f"interval must be at least 0, got {interval}")
        if max is not None and max < 1:
            raise ValueError(f"max must be at least 1, got {max}")
        if freeze is not None and freeze <= 0:
            raise ValueError(f"freeze must be a positive number of seconds, got {freeze}")
        self.kind = kind
        self.interval = interval
        self.max = max
        self.duration = duration
        self.freeze = freeze
        self.address = address
        self.where = where
        self.on_injection = on_injection
        self.report = Report(
            kind=kind, action="freeze" if freeze else "kill", interval=interval, max=max, freeze=freeze, started=time.time()
        )
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._targets: list[Target] = []
        self._listed = threading.Event()  # a listing arrived since the last injection
        self._hit: set[tuple[int, float]] = set()  # (pid, start time) of processes already killed
        self._frozen: list[tuple[float, psutil.Process, Injection]] = []
        self._errors: dict[str, int] = {}
        self._thread: threading.Thread | None = None

    # ---- running ----------------------------------------------------------------------

    def run(self) -> Report:
        """Inject until ``max``, ``duration`` or ``stop()``; resume what is frozen; return the report."""
        refresher = threading.Thread(target=self._refresh, name="actorlib-chaos-list", daemon=True)
        refresher.start()
        deadline = time.monotonic() + self.duration if self.duration is not None else None
        due = time.monotonic() + self.interval
        try:
            while not self._listed.is_set() and not self._done(deadline):
                self._listed.wait(POLL)  # the first listing: before it, "nothing to hit" means nothing
            while not self._done(deadline):
                self._thaw_due()
                now = time.monotonic()
                if now < due:
                    self._stop.wait(min(due - now, self._next_thaw() - now, POLL * 5))
                    continue
                injection = self._inject_one()
                if injection is None:
                    self.report.misses += 1
                    self._wait_for_target(deadline)
                    continue
                due = time.monotonic() + self.interval
            while self._frozen and not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
                self._thaw_due()  # a freeze lasts its time, even after the last injection
                self._stop.wait(POLL)
        finally:
            self._stop.set()
            self._thaw_all()
            refresher.join(timeout=30)
            self.report.ended = time.time()
            self.report.errors = [f"{error} (x{n})" if n > 1 else error for error, n in self._errors.items()]
        return self.report

    def start(self) -> Chaos:
        """Run in a background thread; ``stop()`` (or leaving a ``with`` block) ends it."""
        if self._thread is not None:
            raise RuntimeError("this injector was started already")
        self._thread = threading.Thread(target=self.run, name="actorlib-chaos", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> Report:
        """Stop injecting, resume every frozen process, and return the report."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._thaw_all()
        return self.report

    def wait(self, timeout: float | None = None) -> Report:
        """Block until a background run ends by itself (``max`` or ``duration``)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.report

    def __enter__(self) -> Chaos:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def count(self) -> int:
        """Injections so far."""
        return len(self.report.injections)

    # ---- the parts ---------------------------------------------------------------------

    def _done(self, deadline: float | None) -> bool:
        if self._stop.is_set():
            return True
        if self.max is not None and self.count >= self.max:
            return True
        return deadline is not None and time.monotonic() >= deadline

    def _refresh(self) -> None:
        """Keep the list of targets fresh (listing takes a while: a node samples new processes' CPU)."""
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                targets = list_targets(self.kind, self.address)
            except Exception as exc:  # the head away (it may be our own victim): try again
                error = f"{type(exc).__name__}: {exc}"
                self._errors[error] = self._errors.get(error, 0) + 1
                self._stop.wait(0.5)
                continue
            with self._lock:
                self._targets = targets
            self._listed.set()
            self._stop.wait(max(0.0, MIN_REFRESH - (time.monotonic() - began)))

    def _wait_for_target(self, deadline: float | None) -> None:
        """Nothing to hit now: wait for the next listing (or a stop, or the deadline)."""
        self._listed.clear()
        while not self._stop.is_set() and not self._listed.wait(POLL):
            self._thaw_due()
            if deadline is not None and time.monotonic() >= deadline:
                return

    def _candidates(self) -> list[Target]:
        with self._lock:
            targets = list(self._targets)
        frozen = {process.pid for _, process, _ in self._frozen}
        out = [t for t in targets if t.pid not in frozen and (self.where is None or self.where(t))]
        busy = [t for t in out if t.busy]
        return busy or out

    def _inject_one(self) -> Injection | None:
        candidates = self._candidates()
        self._random.shuffle(candidates)
        for target in candidates:
            process = still_listed(target)
            if process is None:
                continue
            try:
                key = (process.pid, process.create_time())
                if key in self._hit:
                    continue
                if self.freeze:
                    process.suspend()
                else:
                    process.kill()
            except psutil.Error:
                continue
            if not self.freeze:
                self._hit.add(key)  # a frozen process may be frozen again once it is resumed
            injection = Injection(
                time=time.time(), kind=self.kind, action=self.report.action, pid=target.pid, node_id=target.node_id,
                node_ip=target.node_ip, name=target.name, actor_id=target.actor_id,
            )  # fmt: skip
            if self.freeze:
                self._frozen.append((time.monotonic() + self.freeze, process, injection))
            self.report.injections.append(injection)
            if self.on_injection is not None:
                self.on_injection(injection)
            return injection
        return None

    def _next_thaw(self) -> float:
        return min((due for due, _, _ in self._frozen), default=float("inf"))

    def _thaw_due(self) -> None:
        now = time.monotonic()
        for entry in [e for e in self._frozen if e[0] <= now]:
            self._thaw(entry)

    def _thaw_all(self) -> None:
        for entry in list(self._frozen):
            self._thaw(entry)

    def _thaw(self, entry: tuple[float, psutil.Process, Injection]) -> None:
        self._frozen.remove(entry)
        _, process, injection = entry
        try:
            process.resume()
        except psutil.Error:  # it died while frozen (its node fenced it, say)
            pass
        injection.thawed = time.time()
