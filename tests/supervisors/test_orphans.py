"""No process outlives its supervisor, and none dies while its supervisor lives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import trio

from supervisors import ChildSpec, ProcessChild, open_supervisor

from .conftest import SUPERVISOR_PROGRAM, alive, child_argv, wait_gone


def _supervising(*args: str) -> subprocess.Popen:
    here = os.path.dirname(SUPERVISOR_PROGRAM)
    env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, SUPERVISOR_PROGRAM, *args], stdout=subprocess.PIPE, env=env)


async def test_sigkill_of_the_supervising_process_leaves_no_child():
    parent = _supervising("3")
    try:
        line = await trio.to_thread.run_sync(parent.stdout.readline)
        pids = json.loads(line)
        assert len(pids) == 3 and all(alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        assert await wait_gone(pids, 2.0) == []
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


async def test_sigkill_of_the_supervisor_kills_what_a_shimmed_program_started():
    # The shim dies by its parent-death signal at once; its program's children must die too.
    seconds = f"{900 + os.getpid() % 97}.{os.getpid() % 1000:03d}"  # marks this test's sleeps
    parent = _supervising("1", seconds)
    try:
        await trio.to_thread.run_sync(parent.stdout.readline)
        with trio.fail_after(10):
            while len(sleeps := _sleeping(seconds)) < 2:
                await trio.sleep(0.02)
        parent.send_signal(signal.SIGKILL)
        assert await wait_gone(sleeps, 2.0) == []
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


async def test_sigkill_of_the_supervisor_kills_what_its_python_children_started():
    # A child dies by its parent-death signal; what it started lives in its process group and
    # must go with it (the child kills its group as it dies, not only itself).
    parent = _supervising("6", "grandchildren")
    try:
        while not isinstance(pids := json.loads(await trio.to_thread.run_sync(parent.stdout.readline)), list):
            pass  # the children print their grandchildren's pids on the same stdout
        assert len(pids) == 12 and all(alive(p) for p in pids)  # 6 children, 6 grandchildren
        parent.send_signal(signal.SIGKILL)
        assert await wait_gone(pids, 5.0) == []
    finally:
        parent.kill()
        parent.wait()
        parent.stdout.close()


def _sleeping(seconds: str) -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", seconds]]


@pytest.mark.slow
async def test_a_healthy_process_child_is_alive_20s_after_spawn():
    # PR_SET_PDEATHSIG fires when the *thread* that spawned the child exits;
    # trio retires idle to_thread workers after ~10 s. Spawning on a worker
    # thread would kill this child around then.
    await trio.to_thread.run_sync(lambda: None)
    spec = ChildSpec(id="c", start=lambda: ProcessChild(child_argv("serve")))
    async with open_supervisor([spec]) as sup:
        pid = sup.snapshot().children[0].pid
        await trio.sleep(20)
        assert alive(pid)
        assert sup.snapshot().children[0].restarts == 0
