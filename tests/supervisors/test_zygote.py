"""Children forked from a zygote are supervised like any process child, and never outlive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import trio

from .conftest import alive, wait_gone

PROGRAM = str(Path(__file__).with_name("zygote_program.py"))


def start(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.path.dirname(PROGRAM) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, PROGRAM, *args], stdout=subprocess.PIPE, env=env, text=True)


async def read_report(process: subprocess.Popen) -> dict:
    line = await trio.to_thread.run_sync(process.stdout.readline)
    assert line, "the program printed nothing"
    return json.loads(line)


def finish(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()
    process.stdout.close()


async def test_forked_children_are_supervised_and_reaped():
    process = start("basic")
    try:
        report = await read_report(process)
        assert await trio.to_thread.run_sync(process.wait) == 0
    finally:
        finish(process)
    assert report["restarted_reason"] == "RuntimeError: boom"
    assert report["restarted_pid"] not in report["first"]
    assert report["terminated"] == ["shutdown", "stopped (exit code 0)"]
    assert await wait_gone(report["first"] + [report["restarted_pid"]], 5) == []


async def test_sigkill_of_the_supervising_process_leaves_no_forked_child():
    process = start("serve", "3")
    try:
        report = await read_report(process)
        everyone = report["pids"] + [report["zygote"]]
        assert all(alive(p) for p in everyone)
        process.send_signal(signal.SIGKILL)
        assert await wait_gone(everyone, 2.0) == []
    finally:
        finish(process)


async def test_a_dead_zygote_takes_its_children_with_it():
    process = start("serve", "2")
    try:
        report = await read_report(process)
        os.kill(report["zygote"], signal.SIGKILL)
        assert await wait_gone(report["pids"], 2.0) == []
    finally:
        finish(process)


async def test_a_dead_zygote_takes_what_its_children_started_too():
    # The children die by their parent-death signal; what they started (in their process
    # groups) has no such signal, and nobody is left to reap their groups but the supervisor.
    process = start("families", "2")
    try:
        report = await read_report(process)
        assert len(report["grandchildren"]) == 2 and all(alive(p) for p in report["grandchildren"])
        os.kill(report["zygote"], signal.SIGKILL)
        assert await wait_gone(report["pids"] + report["grandchildren"], 5.0) == []
    finally:
        finish(process)


async def test_sigkill_of_the_supervising_process_leaves_no_forked_grandchild():
    process = start("families", "6")
    try:
        report = await read_report(process)
        everyone = report["pids"] + report["grandchildren"] + [report["zygote"]]
        assert len(report["grandchildren"]) == 6 and all(alive(p) for p in everyone)
        process.send_signal(signal.SIGKILL)
        assert await wait_gone(everyone, 5.0) == []
    finally:
        finish(process)


async def test_the_zygotes_messages_are_read_without_a_large_allocation_each():
    """Regression: each of the zygote's messages (a child spawned, a child exited) was read
    with ``recv(1 MiB)``, a megabyte allocated and shrunk per message, which fragmented the
    C heap of the long-lived process that owns the zygote (the head's, in the soak)."""
    process = start("traced", "5")
    try:
        report = await read_report(process)
        assert await trio.to_thread.run_sync(process.wait) == 0
    finally:
        finish(process)
    assert report["started"] == 5
    assert report["peak"] < 256 * 1024, f"spawning 5 children allocated {report['peak']} bytes at once"
