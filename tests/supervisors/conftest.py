from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest
import trio

CHILD_PROGRAM = str(Path(__file__).with_name("child_program.py"))
SUPERVISOR_PROGRAM = str(Path(__file__).with_name("supervisor_program.py"))


def child_argv(*args: str) -> list[str]:
    return [sys.executable, CHILD_PROGRAM, *args]


def alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_gone(pids, deadline: float) -> list[int]:
    """Poll until every pid is gone or ``deadline`` seconds pass; return the survivors."""
    with trio.move_on_after(deadline):
        while any(alive(p) for p in pids):
            await trio.sleep(0.02)
    return [p for p in pids if alive(p)]


@pytest.fixture
def no_leaked_children():
    """Assert the test left no child process of ours running."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    survivors = [p.pid for p in left if alive(p.pid)]
    assert not survivors, f"processes left behind: {survivors}"


def trace_env() -> dict[str, str]:
    return dict(os.environ)
