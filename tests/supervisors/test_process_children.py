"""Process children: handshake, failure reports, the stop ladder, reaping, escalation."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import trio

from supervisors import (
    ChildSpec,
    Escalated,
    ExitKind,
    Intensity,
    ProcessChild,
    StartError,
    Supervisor,
    open_supervisor,
    spawn,
    supervisor_spec,
)

from .conftest import alive, child_argv, wait_gone

pytestmark = pytest.mark.usefixtures("no_leaked_children")


def proc(*args: str, **kwargs) -> ChildSpec:
    spec_keys = {"restart", "shutdown", "start_timeout", "id"}
    spec_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in spec_keys}
    spec_kwargs.setdefault("id", args[0])
    return ChildSpec(start=lambda: ProcessChild(child_argv(*args), **kwargs), **spec_kwargs)


async def wait_for(predicate, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


async def test_crashed_process_is_restarted_with_its_reported_error():
    async with open_supervisor([proc("crash", "0.2")], backoff=None) as sup:
        first = sup.snapshot().children[0].pid
        await wait_for(lambda: sup.snapshot().children[0].restarts >= 1 and sup.snapshot().children[0].state == "running")
        child = sup.snapshot().children[0]
        assert child.pid != first and alive(child.pid)
        assert not alive(first)
        assert child.last_exit.kind is ExitKind.ABNORMAL
        assert child.last_exit.reason == "RuntimeError: boom"
        assert "raise RuntimeError" in child.last_exit.traceback


async def test_a_ready_message_longer_than_one_read_of_the_control_socket_arrives_whole():
    started: list[ProcessChild] = []

    def start() -> ProcessChild:
        started.append(ProcessChild(child_argv("big-ready", "100000")))
        return started[-1]

    async with open_supervisor([ChildSpec(id="big", start=start)]) as sup:
        assert sup.snapshot().children[0].state == "running"
        assert started[-1].ready_info == {"blob": "x" * 100_000}  # 25 reads of 4 KiB


async def test_nonzero_exit_code_is_abnormal():
    async with open_supervisor([proc("exit", "3", restart="transient")]) as sup:
        await wait_for(lambda: (sup.snapshot().children[0].last_exit or None) is not None)
        assert sup.snapshot().children[0].last_exit.reason == "exit code 3"


async def test_sys_exit_inside_the_program_exits_with_its_status_and_no_traceback():
    async with open_supervisor([proc("sys-exit", "3", restart="transient")]) as sup:
        await wait_for(lambda: (sup.snapshot().children[0].last_exit or None) is not None)
        exit = sup.snapshot().children[0].last_exit
        assert exit.reason == "exit code 3" and not exit.traceback


async def test_graceful_stop_is_a_shutdown():
    async with open_supervisor([proc("serve")]) as sup:
        pid = sup.snapshot().children[0].pid
        exit = await sup.terminate_child("serve")
    assert (exit.kind, exit.code) == (ExitKind.SHUTDOWN, 0)
    assert not alive(pid)


async def test_a_child_ignoring_sigterm_is_sigkilled_after_its_timeout():
    async with open_supervisor([proc("ignore-stop", shutdown=1.0)]) as sup:
        pid = sup.snapshot().children[0].pid
        began = trio.current_time()
        exit = await sup.terminate_child("ignore-stop")
        took = trio.current_time() - began
    assert exit.signal == signal.SIGKILL and exit.kind is ExitKind.SHUTDOWN
    assert took >= 1.0  # it was given its full timeout first
    assert not alive(pid)


async def test_brutal_kill_skips_the_ladder():
    async with open_supervisor([proc("ignore-stop", shutdown="brutal_kill")]) as sup:
        exit = await sup.terminate_child("ignore-stop")
    assert exit.signal == signal.SIGKILL


async def test_start_timeout_kills_and_reaps_the_process():
    spawned: list[ProcessChild] = []

    def start() -> ProcessChild:
        spawned.append(ProcessChild(child_argv("no-ready")))
        return spawned[-1]

    with pytest.raises(StartError, match="start timeout"):
        await Supervisor([ChildSpec(id="slow", start=start, start_timeout=1.0)]).run()
    assert spawned[0].pid is not None and not alive(spawned[0].pid)


async def test_failure_before_ready_is_reported():
    with pytest.raises(StartError, match="ValueError: cannot start: bad config"):
        await Supervisor([proc("fail-start")]).run()


async def test_unknown_program_is_a_start_failure():
    spec = ChildSpec(id="nope", start=lambda: ProcessChild(["/nonexistent/program"]))
    with pytest.raises(StartError, match="FileNotFoundError"):
        await Supervisor([spec]).run()


async def test_grandchildren_die_with_their_parent():
    spec = proc("grandchildren", "2", stdout=subprocess.PIPE)
    async with open_supervisor([spec], backoff=None) as sup:
        child = sup.snapshot().children[0]
        incarnation = sup._slots["grandchildren"].child
        line = await incarnation.stdout.receive_some(1000)
        grandchildren = [int(p) for p in line.split()]
        assert all(alive(p) for p in grandchildren)
        import os

        os.kill(child.pid, signal.SIGKILL)  # the child dies; its group must follow
        assert await wait_gone(grandchildren, 5) == []
        await wait_for(lambda: sup.snapshot().children[0].state == "running")
        assert "possible OOM" in sup.snapshot().children[0].last_exit.reason
        await sup._slots["grandchildren"].child.stdout.aclose()
        await incarnation.stdout.aclose()


async def test_events_name_the_process_they_are_about_even_once_it_is_gone():
    events: list[tuple[str, int | None]] = []
    async with open_supervisor([proc("serve")], backoff=None, on_event=lambda e: events.append((e.type, e.pid))) as sup:
        first = sup.snapshot().children[0].pid
        os.kill(first, signal.SIGKILL)
        await wait_for(lambda: ("started", None) not in events and len([e for e in events if e[0] == "started"]) == 2)
        second = sup.snapshot().children[0].pid
        await sup.terminate_child("serve")
    assert first != second
    assert events == [("started", first), ("exited", first), ("restarting", None), ("started", second), ("stopped", second)]


async def test_a_second_sigterm_while_a_stopped_child_exits_does_not_cut_its_exit_short(tmp_path):
    # `actorlib stop` signals every head and daemon at once, so a head stopping on its SIGTERM
    # got a second one from its daemon's stop ladder as it exited, and died of it.
    path = tmp_path / "exit"
    exits = []
    spec = ChildSpec(id="slow", start=lambda: ProcessChild(child_argv("slow-exit", str(path))), restart="temporary")
    async with open_supervisor([spec], backoff=None, on_event=lambda e: exits.append(e.exit) if e.type == "exited" else None) as sup:
        pid = sup.snapshot().children[0].pid
        os.kill(pid, signal.SIGTERM)
        await wait_for(lambda: path.exists() and "exiting" in path.read_text())
        os.kill(pid, signal.SIGTERM)  # while it runs its exit handlers
        await wait_for(lambda: exits, timeout=10)
    assert exits[0].code == 0 and exits[0].signal is None, exits[0]
    assert path.read_text().split() == ["exiting", "done"]


async def test_foreign_program_through_the_exec_shim():
    spec = ChildSpec(id="sleep", start=lambda: ProcessChild.command(["sleep", "1000"]))
    async with open_supervisor([spec]) as sup:
        pid = sup.snapshot().children[0].pid
        exit = await sup.terminate_child("sleep")
    assert exit.kind is ExitKind.SHUTDOWN
    assert not alive(pid)


async def test_process_escalation_through_two_levels_leaves_nothing():
    inner = supervisor_spec("inner", [proc("crash", "0.05"), proc("serve")], intensity=Intensity(max_restarts=1, within=60), backoff=None)
    sup = Supervisor([inner], id="root", intensity=Intensity(max_restarts=1, within=60), backoff=None)
    seen: set[int] = set()

    def record(event):
        if event.pid:
            seen.add(event.pid)

    sup.on_event = record
    with pytest.raises(Escalated) as info:
        await sup.run()
    assert "root/inner" in str(info.value) and "RuntimeError: boom" in str(info.value)
    assert len(seen) >= 6 and not any(alive(p) for p in seen)


async def test_a_process_spawned_before_the_supervisor_is_adopted_on_first_start():
    early = spawn(child_argv("serve"))  # before any Trio code runs, as a program's first act
    starts: list[ProcessChild] = []

    def start() -> ProcessChild:
        starts.append(ProcessChild(child_argv("serve"), spawned=early))
        return starts[-1]

    async with open_supervisor([ChildSpec(id="early", start=start)], backoff=None) as sup:
        assert sup.snapshot().children[0].pid == early.popen.pid and early.adopted  # READY came over its channel
        await sup.restart_child("early")  # stopped over that channel; the restart spawns a fresh process
        fresh = sup.snapshot().children[0].pid
        assert fresh != early.popen.pid and alive(fresh) and len(starts) == 2
        assert sup.snapshot().children[0].last_exit.kind is ExitKind.SHUTDOWN
    assert not alive(early.popen.pid) and not alive(fresh)


def test_a_spawned_process_nobody_adopts_is_killed():
    early = spawn(child_argv("serve"))
    early.kill()
    assert early.popen.returncode == -signal.SIGKILL
    early.kill()  # idempotent
