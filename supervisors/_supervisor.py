"""The Supervisor: a thin Trio loop around the pure restart policy, intensity and backoff."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import trio

from ._backoff import Backoff
from ._child import Child, StartError, _Status, wait_any
from ._exit import Exit, ExitKind, exit_from_exception
from ._intensity import Intensity
from ._policy import Restart, Strategy, needs_restart, plan_exit
from ._snapshot import ChildInfo, IntensityUse
from ._spec import ChildSpec

log = logging.getLogger("supervisors")

AutoShutdown = Literal["never", "any_significant", "all_significant"]
_LIVE = ("starting", "running", "restarting")


class Escalated(Exception):
    """A supervisor exceeded its restart intensity, stopped its children and gave up."""

    def __init__(self, path: str, child_id: str, cause: Exit, restarts: tuple[float, ...], max_restarts: int, within: float) -> None:
        window = "" if math.isinf(within) else f" within {within:g}s"
        super().__init__(
            f"supervisor {path!r} gave up: more than {max_restarts} restarts{window}; "
            f"last failure: child {child_id!r} {cause.reason}"
        )
        self.path = path
        self.child_id = child_id
        self.cause = cause
        self.restarts = restarts


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """A lifecycle event, passed to ``on_event`` listeners as it happens."""

    type: str  # started | exited | stopped | restarting | escalated
    path: str
    pid: int | None = None
    exit: Exit | None = None
    delay: float | None = None


@dataclass(eq=False)
class _Slot:
    spec: ChildSpec
    child: Child | None = None
    kind: str = "unknown"
    state: str = "stopped"
    started_at: float | None = None
    restarts: int = 0
    step: int = 0
    last_exit: Exit | None = None
    due: object | None = None
    eta: float | None = None


@dataclass(frozen=True)
class _Exited:
    slot: _Slot
    child: Child
    exit: Exit


@dataclass(frozen=True)
class _Due:
    token: object
    ids: tuple[str, ...]


@dataclass
class _GiveUp(Exception):
    child_id: str
    cause: Exit


@dataclass
class _Options:
    strategy: Strategy
    intensity: Intensity
    backoff: Backoff | None
    auto_shutdown: AutoShutdown
    template: Callable[..., ChildSpec] | None
    rng: random.Random = field(default_factory=random.Random)


class Supervisor:
    """Runs children, restarts them by strategy, escalates when restarts come too fast.

    A Supervisor runs once (:meth:`run`); to restart one under a parent, give
    the parent a spec that builds a new one (:func:`supervisor_spec`).

    ``on_event(event)`` is called with each :class:`Event` as it happens, on the
    supervisor's Trio thread, synchronously, inside its decision loop (child
    supervisors without their own listener use their parent's). A listener must
    be quick and must not block; it may schedule work (start a task, set an
    event). An exception it raises is logged (logger ``supervisors``) and
    contained: the supervisor's decisions never depend on its listeners, so a
    bug in bookkeeping cannot crash the tree it watches.
    """

    def __init__(
        self,
        children: Iterable[ChildSpec] = (),
        *,
        id: str = "supervisor",
        strategy: Strategy | str = Strategy.ONE_FOR_ONE,
        intensity: Intensity | None = None,
        backoff: Backoff | None = Backoff(),
        auto_shutdown: AutoShutdown = "never",
        template: Callable[..., ChildSpec] | None = None,
        on_event: Callable[[Event], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if auto_shutdown not in ("never", "any_significant", "all_significant"):
            raise ValueError(f"auto_shutdown must be never, any_significant or all_significant, got {auto_shutdown!r}")
        self.id = id
        self.path = id
        self.on_event = on_event
        self._opts = _Options(Strategy(strategy), intensity or Intensity(), backoff, auto_shutdown, template)
        if rng is not None:
            self._opts.rng = rng
        self._slots: dict[str, _Slot] = {}
        for spec in children:
            self._add(spec)
        self._send, self._receive = trio.open_memory_channel[_Exited | _Due](math.inf)
        self._lock = trio.Lock()
        self._history: tuple[float, ...] = ()
        self._state = "starting"
        self._stop_scope = trio.CancelScope()
        self._stop_reason = "stopped"
        self._nursery: trio.Nursery | None = None
        self._last_failure: tuple[str, Exit] | None = None
        self.exit_kind: ExitKind | None = None

    # ---- running ---------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the children in order, then supervise them until stopped.

        Signals ``task_status.started()`` once every child is READY. Returns
        when stopped (:meth:`request_stop`, or cancellation, which it lets
        through after stopping children in reverse order) or on
        auto-shutdown. Raises :class:`StartError` if a child fails to start
        and :class:`Escalated` when restart intensity is exceeded; in every
        case no child is left running.
        """
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                with self._stop_scope:
                    await self._start_all()
                    self._state = "running"
                    task_status.started()
                    await self._serve()
                    self.exit_kind = ExitKind.NORMAL
            except StartError as exc:
                failure = exc
            except _GiveUp as give_up:
                failure = self._escalated(give_up)
            finally:
                with trio.CancelScope(shield=True):
                    await self._stop_all(self._stop_reason)
                self._state = "escalated" if isinstance(failure, Escalated) else "stopped"
                if self.exit_kind is None:
                    self.exit_kind = ExitKind.SHUTDOWN
                nursery.cancel_scope.cancel()  # pending restart timers
        if failure is not None:
            raise failure

    def request_stop(self, reason: str = "stopped") -> None:
        """Ask the supervisor to stop its children in reverse order and return. Idempotent."""
        self._stop_reason = reason
        self._stop_scope.cancel()

    async def _serve(self) -> None:
        async for event in self._receive:
            async with self._lock:
                if await self._handle(event):
                    return

    async def _handle(self, event: _Exited | _Due) -> bool:
        if isinstance(event, _Due):
            return await self._restart_due(event)
        if event.slot.child is not event.child or self._slots.get(event.slot.spec.id) is not event.slot:
            return False  # an exit we caused, or of an earlier incarnation
        return await self._on_exit(event.slot, event.exit)

    async def _on_exit(self, slot: _Slot, exit: Exit) -> bool:
        pid = slot.child.pid if slot.child is not None else None
        slot.child, slot.last_exit = None, exit
        slot.state = "failed" if exit.kind is ExitKind.ABNORMAL else "stopped"
        self._emit("exited", slot, exit=exit, pid=pid)
        self._last_failure = (slot.spec.id, exit)
        plan = plan_exit(
            self._opts.strategy,
            list(self._slots),
            {i for i, s in self._slots.items() if s.child is not None},
            {i: s.spec.restart for i, s in self._slots.items()},  # type: ignore[misc]
            slot.spec.id,
            exit.kind,
        )
        for child_id in plan.stop:
            await self._stop_slot(self._slots[child_id], f"{self._opts.strategy.value}: {slot.spec.id} exited")
        for child_id in plan.remove:
            del self._slots[child_id]
        if plan.start:
            self._schedule(slot, exit, plan.start)
        return self._auto_shutdown(slot, exit)

    def _schedule(self, slot: _Slot, exit: Exit, ids: tuple[str, ...]) -> None:
        delay = 0.0
        if self._opts.backoff is not None:
            uptime = exit.at - slot.started_at if slot.started_at is not None else 0.0
            delay, slot.step = self._opts.backoff.schedule(slot.step, uptime, self._opts.rng.random())
        token = object()
        eta = trio.current_time() + delay
        for child_id in ids:
            pending = self._slots[child_id]
            pending.due, pending.eta, pending.state = token, eta, "restarting"
        self._emit("restarting", slot, delay=delay)
        assert self._nursery is not None
        self._nursery.start_soon(self._fire_after, delay, _Due(token, ids))

    async def _fire_after(self, delay: float, due: _Due) -> None:
        await trio.sleep(delay)
        self._send.send_nowait(due)

    async def _restart_due(self, due: _Due) -> bool:
        batch = [self._slots[i] for i in due.ids if i in self._slots and self._slots[i].due is due.token]
        if not batch:
            return False
        self._history, exceeded = self._opts.intensity.record(self._history, trio.current_time())
        if exceeded:
            assert self._last_failure is not None
            raise _GiveUp(*self._last_failure)
        for slot in batch:
            slot.due = slot.eta = None
            slot.restarts += 1
            if not await self._start_slot(slot):
                assert slot.last_exit is not None
                return await self._on_exit(slot, slot.last_exit)
        return False

    def _auto_shutdown(self, slot: _Slot, exit: Exit) -> bool:
        mode = self._opts.auto_shutdown
        if mode == "never" or not slot.spec.significant:
            return False
        if needs_restart(slot.spec.restart, exit.kind):  # type: ignore[arg-type]
            return False
        if mode == "any_significant":
            return True
        return not any(s.spec.significant and s.state in _LIVE for s in self._slots.values())

    def _escalated(self, give_up: _GiveUp) -> Escalated:
        self._stop_reason = "escalated"
        intensity = self._opts.intensity
        error = Escalated(
            self.path, give_up.child_id, give_up.cause, self._history, intensity.max_restarts, intensity.within
        )
        self._emit_path("escalated", self.path, exit=give_up.cause)
        return error

    # ---- starting and stopping children ------------------------------------

    async def _start_all(self) -> None:
        for slot in list(self._slots.values()):
            if not await self._start_slot(slot):
                assert slot.last_exit is not None
                raise StartError(slot.spec.id, slot.last_exit)

    async def _start_slot(self, slot: _Slot) -> bool:
        assert self._nursery is not None
        slot.state = "starting"
        try:
            child = slot.spec.start()
            slot.kind, slot.child = child.kind, child
            if isinstance(child, SupervisorChild):
                child.supervisor._adopt(self)
            with trio.fail_after(slot.spec.start_timeout):
                await child.start(self._nursery)
        except trio.TooSlowError:
            exit = Exit(kind=ExitKind.ABNORMAL, reason=f"start timeout after {slot.spec.start_timeout:g}s")
        except StartError as exc:
            exit = exc.exit
        except Exception as exc:
            exit = exit_from_exception(exc, at=trio.current_time())
        else:
            slot.state, slot.started_at = "running", trio.current_time()
            self._nursery.start_soon(self._watch, slot, child)
            self._emit("started", slot)
            return True
        slot.child, slot.last_exit, slot.state = None, exit, "failed"
        return False

    async def _watch(self, slot: _Slot, child: Child) -> None:
        with trio.CancelScope(shield=True):
            exit = await child.wait()
        self._send.send_nowait(_Exited(slot, child, exit))

    async def _stop_slot(self, slot: _Slot, reason: str) -> None:
        slot.due = slot.eta = None
        child = slot.child
        if child is None:
            if slot.state == "restarting":
                slot.state = "stopped"
            return
        slot.state = "stopping"
        exit = await child.stop(slot.spec.stop_timeout(slot.kind), reason)
        slot.child, slot.last_exit, slot.state = None, exit, "stopped"
        self._emit("stopped", slot, exit=exit, pid=child.pid)

    async def _stop_all(self, reason: str) -> None:
        async with self._lock:
            self._state = "stopping"
            slots = list(reversed(self._slots.values()))
            if self._opts.strategy is Strategy.POOL:
                async with trio.open_nursery() as nursery:
                    for slot in slots:
                        nursery.start_soon(self._stop_slot, slot, reason)
            else:
                for slot in slots:
                    await self._stop_slot(slot, reason)

    # ---- dynamic children and operator verbs -------------------------------

    async def start_child(self, *args: Any, **kwargs: Any) -> str:
        """Add a child and start it; return its id once it is READY.

        Pass a :class:`ChildSpec`, or, for a supervisor made with a
        ``template``, the template's arguments. Raises StartError (the spec
        is not kept), ValueError for a duplicate id, RuntimeError if the
        supervisor is not running.
        """
        template = self._opts.template
        spec = template(*args, **kwargs) if template is not None else _only_spec(args, kwargs)
        if self._opts.strategy is Strategy.POOL:
            return await self._start_pool_child(spec)
        async with self._lock:
            self._check_running()
            slot = self._add(spec)
            if not await self._start_slot(slot):
                del self._slots[spec.id]
                assert slot.last_exit is not None
                raise StartError(spec.id, slot.last_exit)
        return spec.id

    async def _start_pool_child(self, spec: ChildSpec) -> str:
        # Pool children are independent: start them concurrently, outside the
        # lock, so one slow start does not hold up the others (or restarts).
        async with self._lock:
            self._check_running()
            slot = self._add(spec)
            slot.state = "starting"
        started = await self._start_slot(slot)
        if started and self._state != "running":  # stopped while this child started
            with trio.CancelScope(shield=True):
                await self._stop_slot(slot, self._stop_reason)
            raise RuntimeError(f"supervisor {self.path!r} stopped while {spec.id!r} started")
        if not started:
            async with self._lock:
                if self._slots.get(spec.id) is slot:
                    del self._slots[spec.id]
            assert slot.last_exit is not None
            raise StartError(spec.id, slot.last_exit)
        return spec.id

    async def terminate_child(self, child_id: str, reason: str = "terminated") -> Exit | None:
        """Stop a child (per its shutdown setting) and remove its spec; return its exit."""
        async with self._lock:
            slot = self._slot(child_id)
            await self._stop_slot(slot, reason)
            del self._slots[child_id]
            return slot.last_exit

    async def restart_child(self, child_id: str) -> None:
        """Operator restart: stop the child if running, then start it now (no backoff)."""
        async with self._lock:
            self._check_running()
            slot = self._slot(child_id)
            await self._stop_slot(slot, "operator restart")
            slot.restarts += 1
            if not await self._start_slot(slot):
                assert slot.last_exit is not None
                await self._on_exit(slot, slot.last_exit)

    def _add(self, spec: ChildSpec) -> _Slot:
        if spec.id in self._slots:
            raise ValueError(f"supervisor {self.path!r} already has a child {spec.id!r}")
        slot = self._slots[spec.id] = _Slot(spec)
        return slot

    def _slot(self, child_id: str) -> _Slot:
        try:
            return self._slots[child_id]
        except KeyError:
            raise LookupError(f"supervisor {self.path!r} has no child {child_id!r}") from None

    def _check_running(self) -> None:
        if self._state != "running":
            raise RuntimeError(f"supervisor {self.path!r} is {self._state}, not running")

    def _adopt(self, parent: Supervisor) -> None:
        self.path = f"{parent.path}/{self.id}"
        if self.on_event is None:
            self.on_event = parent.on_event

    # ---- inspection --------------------------------------------------------

    @property
    def state(self) -> str:
        """starting, running, stopping, stopped or escalated."""
        return self._state

    def snapshot(self) -> ChildInfo:
        """The whole subtree as a Struct tree, from in-memory state (no I/O)."""
        now = trio.current_time()
        intensity = self._opts.intensity
        return ChildInfo(
            id=self.id,
            path=self.path,
            kind="supervisor",
            state=self._state,
            restart=Restart.PERMANENT.value,
            strategy=self._opts.strategy.value,
            intensity=IntensityUse(
                restarts=len(intensity.window(self._history, now)),
                max_restarts=intensity.max_restarts,
                within=intensity.within,
            ),
            children=[self._child_info(slot, now) for slot in self._slots.values()],
        )

    def _child_info(self, slot: _Slot, now: float) -> ChildInfo:
        info = ChildInfo(
            id=slot.spec.id,
            path=f"{self.path}/{slot.spec.id}",
            kind=slot.kind,
            state=slot.state,
            restart=slot.spec.restart.value,  # type: ignore[union-attr]
            pid=slot.child.pid if slot.child is not None else None,
            restarts=slot.restarts,
            uptime=now - slot.started_at if slot.child is not None and slot.started_at is not None else None,
            restart_eta=max(0.0, slot.eta - now) if slot.eta is not None else None,
            last_exit=slot.last_exit,
            significant=slot.spec.significant,
        )
        if isinstance(slot.child, SupervisorChild):
            inner = slot.child.supervisor.snapshot()
            info = msgspec.structs.replace(
                info, strategy=inner.strategy, intensity=inner.intensity, children=inner.children
            )
        return info

    def _emit(
        self, type: str, slot: _Slot, *, exit: Exit | None = None, delay: float | None = None, pid: int | None = None
    ) -> None:
        """``pid``: the incarnation's that ended (an exit or stop event), else the slot's child's."""
        if pid is None and slot.child is not None:
            pid = slot.child.pid
        self._emit_path(type, f"{self.path}/{slot.spec.id}", pid=pid, exit=exit, delay=delay)

    def _emit_path(self, type: str, path: str, **fields: Any) -> None:
        listener = self.on_event
        if listener is None:
            return
        try:
            listener(Event(type=type, path=path, **fields))
        except Exception:  # the listener's bug, not the tree's: log it and carry on
            log.exception("supervisor %r: the on_event listener failed on %r for %s", self.path, type, path)


class SupervisorChild:
    """A Supervisor running as the child of another (same Trio loop)."""

    kind = "supervisor"
    pid = None

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self._ready = trio.Event()
        self._done = trio.Event()
        self._exit: Exit | None = None

    async def start(self, nursery: trio.Nursery) -> None:
        nursery.start_soon(self._run)
        try:
            await wait_any(self._ready, self._done)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.stop(None, "start cancelled")
            raise
        if not self._ready.is_set():
            assert self._exit is not None
            raise StartError(self.supervisor.id, self._exit)

    async def _run(self) -> None:
        with trio.CancelScope(shield=True):
            try:
                await self.supervisor.run(task_status=_Status(self._ready))  # type: ignore[arg-type]
            except Escalated as exc:
                self._exit = Exit(
                    kind=ExitKind.ABNORMAL,
                    reason=f"escalated: {exc}",
                    error_type="Escalated",
                    escalated=True,
                    at=trio.current_time(),
                )
            except Exception as exc:
                self._exit = exit_from_exception(exc, at=trio.current_time())
            else:
                kind = self.supervisor.exit_kind or ExitKind.SHUTDOWN
                self._exit = Exit(kind=kind, reason=self.supervisor._stop_reason, at=trio.current_time())
            finally:
                self._done.set()

    async def wait(self) -> Exit:
        await self._done.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, timeout: float | None, reason: str) -> Exit:
        self.supervisor.request_stop(reason)
        return await self.wait()


def supervisor_spec(
    id: str,
    children: Iterable[ChildSpec] | Callable[[], Iterable[ChildSpec]],
    *,
    restart: Restart | str = Restart.PERMANENT,
    significant: bool = False,
    **options: Any,
) -> ChildSpec:
    """A spec for a child supervisor; each incarnation is a fresh Supervisor.

    ``options`` are Supervisor keyword arguments (strategy, intensity, ...).
    """
    make = children if callable(children) else (lambda specs=list(children): specs)

    def start() -> Child:
        return SupervisorChild(Supervisor(make(), id=id, **options))

    return ChildSpec(id=id, start=start, restart=restart, shutdown="infinity", significant=significant)


def _only_spec(args: tuple[Any, ...], kwargs: dict[str, Any]) -> ChildSpec:
    if kwargs or len(args) != 1 or not isinstance(args[0], ChildSpec):
        raise TypeError("start_child() takes one ChildSpec (or the template's arguments, with a template)")
    return args[0]
