"""The supervisor loop with Trio-task children (deterministic: autojump clock)."""

from __future__ import annotations

import pytest
import trio

from supervisors import (
    Backoff,
    ChildSpec,
    Escalated,
    ExitKind,
    Intensity,
    Restart,
    Shutdown,
    StartError,
    Supervisor,
    TaskChild,
    open_supervisor,
    supervisor_spec,
)

NO_BACKOFF = dict(backoff=None)


class Journal:
    """Task children that record their starts and stops, and crash on demand."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []
        self.crash: dict[str, trio.Event] = {}
        self.running: dict[str, trio.Event] = {}

    def spec(self, name: str, *, fail_every_start: bool = False, **kwargs) -> ChildSpec:
        return ChildSpec(id=name, start=lambda: TaskChild(self._body, name, fail_every_start), **kwargs)

    async def _body(self, name: str, fail_every_start: bool, task_status=trio.TASK_STATUS_IGNORED) -> None:
        self.log.append(("start", name))
        if fail_every_start:
            raise RuntimeError(f"{name} cannot start")
        self.crash[name] = trio.Event()
        self.running.setdefault(name, trio.Event()).set()
        task_status.started()
        try:
            await self.crash[name].wait()
        finally:
            self.log.append(("stop", name))
        raise RuntimeError(f"{name} crashed")

    def kill(self, name: str) -> None:
        self.running[name] = trio.Event()
        self.crash[name].set()

    async def wait_running(self, name: str) -> None:
        await self.running.setdefault(name, trio.Event()).wait()

    async def wait_logged(self, *entries: tuple[str, str]) -> None:
        with trio.fail_after(60):
            while not all(e in self.log for e in entries):
                await trio.sleep(0.001)


async def test_one_for_one_restarts_only_the_crashed_child(autojump_clock):
    j = Journal()
    async with open_supervisor([j.spec("a"), j.spec("b")], **NO_BACKOFF) as sup:
        j.log.clear()
        j.kill("a")
        await j.wait_running("a")
        assert j.log == [("stop", "a"), ("start", "a")]
        snap = {c.id: c for c in sup.snapshot().children}
        assert (snap["a"].restarts, snap["b"].restarts) == (1, 0)
        assert snap["a"].last_exit.reason == "RuntimeError: a crashed"


async def test_one_for_all_stops_in_reverse_and_restarts_in_order(autojump_clock):
    j = Journal()
    specs = [j.spec("a"), j.spec("b"), j.spec("c")]
    async with open_supervisor(specs, strategy="one_for_all", **NO_BACKOFF):
        j.log.clear()
        j.kill("b")
        await j.wait_logged(("start", "c"))
    assert j.log[:7] == [
        ("stop", "b"),
        ("stop", "c"),
        ("stop", "a"),
        ("start", "a"),
        ("start", "b"),
        ("start", "c"),
        ("stop", "c"),
    ]


async def test_rest_for_one_restarts_the_child_and_those_after_it(autojump_clock):
    j = Journal()
    specs = [j.spec("a"), j.spec("b"), j.spec("c")]
    async with open_supervisor(specs, strategy="rest_for_one", **NO_BACKOFF):
        j.log.clear()
        j.kill("b")
        await j.wait_logged(("start", "c"))
        assert j.log == [("stop", "b"), ("stop", "c"), ("start", "b"), ("start", "c")]


async def test_restart_types():
    ended = {"t": trio.Event(), "tmp": trio.Event()}

    async def returns(name: str) -> None:
        ended[name].set()

    specs = [
        ChildSpec(id="t", start=lambda: TaskChild(returns, "t"), restart=Restart.TRANSIENT),
        ChildSpec(id="tmp", start=lambda: TaskChild(returns, "tmp"), restart="temporary"),
    ]
    async with open_supervisor(specs) as sup:
        await ended["t"].wait()
        await ended["tmp"].wait()
        with trio.fail_after(5):
            while len(sup.snapshot().children) != 1 or sup.snapshot().children[0].state != "stopped":
                await trio.sleep(0.01)
        (child,) = sup.snapshot().children
        assert (child.id, child.state, child.restarts) == ("t", "stopped", 0)
        assert child.last_exit.kind is ExitKind.NORMAL


async def test_shutdown_exception_does_not_restart_a_transient_child():
    done = trio.Event()

    async def quits() -> None:
        done.set()
        raise Shutdown("maintenance")

    async with open_supervisor([ChildSpec(id="q", start=lambda: TaskChild(quits), restart="transient")]) as sup:
        await done.wait()
        with trio.fail_after(5):
            while sup.snapshot().children[0].last_exit is None:
                await trio.sleep(0.01)
        child = sup.snapshot().children[0]
        assert child.last_exit.kind is ExitKind.SHUTDOWN and child.restarts == 0


async def test_backoff_delays_grow_exponentially(autojump_clock):
    starts: list[float] = []

    async def crash_at_once() -> None:
        starts.append(trio.current_time())
        await trio.sleep(0)
        raise RuntimeError("again")

    backoff = Backoff(initial=1, max=4, multiplier=2, jitter=0, reset_after=100)
    spec = ChildSpec(id="c", start=lambda: TaskChild(crash_at_once))
    sup = Supervisor([spec], backoff=backoff, intensity=Intensity(max_restarts=5, within=1000))
    with pytest.raises(Escalated):
        await sup.run()
    gaps = [round(b - a, 6) for a, b in zip(starts, starts[1:])]
    assert gaps == [1, 2, 4, 4, 4]


async def test_escalation_through_a_two_level_tree(autojump_clock):
    j = Journal()
    inner = supervisor_spec("inner", [j.spec("crasher", fail_every_start=False)], intensity=Intensity(max_restarts=1, within=60), backoff=None)
    sup = Supervisor([inner, j.spec("bystander")], id="root", intensity=Intensity(max_restarts=2, within=60), backoff=None)

    async def crash_forever() -> None:
        while True:
            await j.wait_running("crasher")
            j.kill("crasher")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(crash_forever)
        with pytest.raises(Escalated) as info:
            await sup.run()
        nursery.cancel_scope.cancel()
    assert info.value.path == "root" and info.value.child_id == "inner"
    assert info.value.cause.escalated
    assert "root/inner" in info.value.cause.reason
    crasher_starts = [e for e in j.log if e == ("start", "crasher")]
    assert len(crasher_starts) == 6  # (1 + 1 restart) in each of 3 incarnations of inner
    assert j.log[-1] == ("stop", "bystander")  # the root stopped everything before giving up
    assert sup.state == "escalated"


async def test_start_failure_stops_earlier_children_and_raises(autojump_clock):
    j = Journal()
    with pytest.raises(StartError, match="b cannot start"):
        async with open_supervisor([j.spec("a"), j.spec("b", fail_every_start=True), j.spec("c")]):
            pytest.fail("the block must not run")  # pragma: no cover
    assert j.log == [("start", "a"), ("start", "b"), ("stop", "a")]


async def test_start_timeout(autojump_clock):
    async def never_ready(task_status=trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep_forever()

    spec = ChildSpec(id="slow", start=lambda: TaskChild(never_ready), start_timeout=3)
    with pytest.raises(StartError, match="start timeout after 3s"):
        await Supervisor([spec]).run()


async def test_ordered_shutdown_when_cancelled(autojump_clock):
    j = Journal()
    with trio.move_on_after(1):
        await Supervisor([j.spec("a"), j.spec("b"), j.spec("c")]).run()
    assert j.log[3:] == [("stop", "c"), ("stop", "b"), ("stop", "a")]


async def test_pool_stops_children_in_parallel(autojump_clock):
    async def slow_to_stop(task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await trio.sleep_forever()
        finally:
            with trio.CancelScope(shield=True):
                await trio.sleep(1)

    def template(n: int) -> ChildSpec:
        return ChildSpec(id=f"w{n}", start=lambda: TaskChild(slow_to_stop))

    sup = Supervisor(strategy="pool", template=template)
    async with trio.open_nursery() as nursery:
        await nursery.start(sup.run)
        for n in range(4):
            assert await sup.start_child(n) == f"w{n}"
        assert [c.id for c in sup.snapshot().children] == ["w0", "w1", "w2", "w3"]
        began = trio.current_time()
        sup.request_stop()
    assert trio.current_time() - began == pytest.approx(1, abs=0.01)  # not 4: all at once


async def test_dynamic_children(autojump_clock):
    j = Journal()
    async with open_supervisor([], id="dyn") as sup:
        await sup.start_child(j.spec("x"))
        with pytest.raises(ValueError, match="already has a child 'x'"):
            await sup.start_child(j.spec("x"))
        with pytest.raises(StartError):
            await sup.start_child(j.spec("bad", fail_every_start=True))
        assert [c.id for c in sup.snapshot().children] == ["x"]
        exit = await sup.terminate_child("x")
        assert exit.kind is ExitKind.SHUTDOWN
        assert sup.snapshot().children == []
        with pytest.raises(LookupError, match="no child 'nope'"):
            await sup.terminate_child("nope")


async def test_auto_shutdown_when_a_significant_child_finishes(autojump_clock):
    async def job() -> None:
        await trio.sleep(5)

    j = Journal()
    specs = [ChildSpec(id="job", start=lambda: TaskChild(job), restart="transient", significant=True), j.spec("helper")]
    sup = Supervisor(specs, auto_shutdown="any_significant")
    await sup.run()  # returns by itself
    assert sup.exit_kind is ExitKind.NORMAL
    assert j.log == [("start", "helper"), ("stop", "helper")]


def test_permanent_children_cannot_be_significant():
    with pytest.raises(ValueError, match="only transient or temporary"):
        ChildSpec(id="x", start=lambda: TaskChild(trio.sleep_forever), significant=True)


async def test_snapshot_shows_the_nested_tree(autojump_clock):
    j = Journal()
    inner = supervisor_spec("inner", [j.spec("leaf")], strategy="one_for_all")
    async with open_supervisor([inner], id="root") as sup:
        snap = sup.snapshot()
        (inner_info,) = snap.children
        assert (inner_info.kind, inner_info.strategy, inner_info.state) == ("supervisor", "one_for_all", "running")
        (leaf,) = inner_info.children
        assert (leaf.path, leaf.state, leaf.kind) == ("root/inner/leaf", "running", "task")
        assert snap.intensity.max_restarts == 5


async def test_a_failing_event_listener_is_logged_and_contained(autojump_clock, caplog):
    j = Journal()
    seen: list[str] = []

    def buggy(event) -> None:
        seen.append(event.type)
        raise KeyError("bookkeeping bug")

    async with open_supervisor([j.spec("a")], on_event=buggy, **NO_BACKOFF) as sup:
        j.kill("a")  # exited, restarting, started: each event's listener raises
        await j.wait_running("a")
        await j.wait_logged(("stop", "a"), ("start", "a"))
        assert sup.state == "running"
        assert {c.id: c.restarts for c in sup.snapshot().children} == {"a": 1}
    assert {"exited", "restarting", "started"} <= set(seen)
    failures = [r for r in caplog.records if r.name == "supervisors" and "on_event listener failed" in r.getMessage()]
    assert failures and "KeyError" in failures[0].exc_text
