"""Worker deaths, retries and cancellation, with real processes."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
import trio

import actorlib
from actorlib.exceptions import TaskCancelledError, WorkerCrashedError

pytestmark = pytest.mark.usefixtures("cluster")


def attempts(path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@actorlib.remote
def die_first(path: str, how: str):
    """Record an attempt; die on the first one in the given way."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    with open(path) as f:
        first = len(f.read().splitlines()) == 1
    if first or how.startswith("always-"):
        how = how.removeprefix("always-")
        if how == "sigkill":
            os.kill(os.getpid(), 9)
        elif how == "exit":
            os._exit(3)
        elif how == "segfault":
            import ctypes

            ctypes.string_at(0)
        elif how == "raise":
            raise ConnectionError("flaky")
    return "survived"


def test_worker_sigkilled_mid_task_is_retried(tmp_path):
    path = tmp_path / "attempts"
    assert actorlib.get(die_first.remote(str(path), "sigkill")) == "survived"
    pids = path.read_text().split()
    assert len(pids) == 2 and pids[0] != pids[1]


def test_crashing_task_exhausts_retries(tmp_path):
    path = tmp_path / "attempts"
    with pytest.raises(WorkerCrashedError, match=r"exit code 3.*tried 3 times") as info:
        actorlib.get(die_first.options(max_retries=2).remote(str(path), "always-exit"))
    assert attempts(path) == 3
    assert "die_first()" in str(info.value)


def test_segfault_is_a_worker_crash(tmp_path):
    path = tmp_path / "attempts"
    with pytest.raises(WorkerCrashedError, match="SIGSEGV"):
        actorlib.get(die_first.options(max_retries=0).remote(str(path), "always-segfault"))
    assert attempts(path) == 1


def test_retry_exceptions(tmp_path):
    retried = tmp_path / "retried"
    assert actorlib.get(die_first.options(retry_exceptions=True).remote(str(retried), "raise")) == "survived"
    assert attempts(retried) == 2
    listed = tmp_path / "listed"
    assert actorlib.get(die_first.options(retry_exceptions=[ConnectionError]).remote(str(listed), "raise")) == "survived"
    assert attempts(listed) == 2
    other = tmp_path / "other"
    with pytest.raises(ConnectionError):
        actorlib.get(die_first.options(retry_exceptions=[ValueError]).remote(str(other), "raise"))
    assert attempts(other) == 1
    plain = tmp_path / "plain"
    with pytest.raises(ConnectionError):
        actorlib.get(die_first.remote(str(plain), "raise"))
    assert attempts(plain) == 1


@actorlib.remote
def sleep_then_mark(seconds: float, path: str, ignore_sigint: bool = False):
    if ignore_sigint:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with open(path, "a") as f:
        f.write("started\n")
    time.sleep(seconds)
    with open(path, "a") as f:
        f.write("finished\n")
    return "done"


def test_cancel_a_pending_task(tmp_path):
    blockers = [sleep_then_mark.remote(30, str(tmp_path / f"b{i}")) for i in range(2)]
    queued = sleep_then_mark.remote(0, str(tmp_path / "queued"))
    actorlib.cancel(queued)
    with pytest.raises(TaskCancelledError):
        actorlib.get(queued, timeout=30)
    for ref in blockers:
        actorlib.cancel(ref)
    for ref in blockers:
        with pytest.raises(TaskCancelledError):
            actorlib.get(ref, timeout=30)
    assert not (tmp_path / "queued").exists()


def test_a_cancel_landing_as_the_task_starts_is_still_answered(tmp_path):
    # The worker takes a while to load each of these functions (each carries 20 MB), so
    # cancels sent a few milliseconds apart land at every point between the worker taking
    # the task and running it; wherever the interrupt lands, the task must be answered.
    for attempt in range(12):
        ballast = os.urandom(20 * 2**20)

        @actorlib.remote
        def heavy(seconds: float) -> int:
            time.sleep(seconds)
            return len(ballast)

        ref = heavy.remote(30)
        time.sleep(attempt * 0.004)
        actorlib.cancel(ref)
        with pytest.raises(TaskCancelledError):
            actorlib.get(ref, timeout=30)


def test_cancel_interrupts_a_running_task(tmp_path):
    path = tmp_path / "running"
    ref = sleep_then_mark.remote(60, str(path))
    _wait_for_file(path)
    actorlib.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    assert path.read_text() == "started\n"


@actorlib.remote
async def asyncio_sleep_then_mark(seconds: float, path: str):
    with open(path, "a") as f:
        f.write("started\n")
    await asyncio.sleep(seconds)
    with open(path, "a") as f:
        f.write("finished\n")


@actorlib.remote
async def trio_sleep_then_mark(seconds: float, path: str):
    with open(path, "a") as f:
        f.write("started\n")
    await trio.sleep(seconds)
    with open(path, "a") as f:
        f.write("finished\n")


@pytest.mark.parametrize("function", [asyncio_sleep_then_mark, trio_sleep_then_mark], ids=["asyncio", "trio"])
def test_cancel_interrupts_a_running_async_task(tmp_path, function):
    path = tmp_path / "running"
    ref = function.remote(60, str(path))
    _wait_for_file(path)
    actorlib.cancel(ref)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    assert path.read_text() == "started\n"
    after = tmp_path / "after"
    assert actorlib.get(function.remote(0, str(after)), timeout=30) is None  # the worker still runs tasks
    assert after.read_text() == "started\nfinished\n"


def test_force_cancel_kills_the_worker_and_does_not_retry(tmp_path):
    path = tmp_path / "stubborn"
    ref = sleep_then_mark.remote(60, str(path), ignore_sigint=True)
    _wait_for_file(path)
    actorlib.cancel(ref, force=True)
    with pytest.raises(TaskCancelledError):
        actorlib.get(ref, timeout=30)
    assert path.read_text() == "started\n"  # ran once, never retried


def _wait_for_file(path, timeout: float = 30) -> None:
    # The task opens the file before it writes: wait for the whole line, or a
    # cancel landing in between would find the file empty.
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
