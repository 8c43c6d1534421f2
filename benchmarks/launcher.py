"""Launch one workload process, read its result line, and account for every process it made.

The harness makes itself a child subreaper, so an orphan anywhere in a workload's tree
is reparented to the harness: while the harness runs one workload at a time, its own
live descendants are exactly that workload's cluster, whatever process groups or
sessions the system puts its processes in.
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

POLL_S = 0.005
TEARDOWN_DEADLINE_S = 30.0
KILL_DEADLINE_S = 10.0
STDERR_TAIL_LINES = 15
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); returns whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass
class Outcome:
    """What one workload process produced; `figures` is its parsed result line."""

    t_spawn: float
    figures: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int | None = None
    wall_s: float = 0.0
    teardown_s: float | None = None
    survivors: list[str] = field(default_factory=list)
    stderr_tail: str = ""


def launch(cmd: list[str], *, cwd: str, env: dict[str, str], timeout: float, holds: bool) -> Outcome:
    """Run one workload process to completion; never leaves a process of it behind.

    Blocks up to `timeout` seconds plus the teardown deadline. A process that times
    out is killed with its whole tree. If `holds`, the cluster is measured while the
    process waits on stdin, and its shutdown and teardown are timed.
    """
    with tempfile.TemporaryFile() as err:
        t_spawn = time.time()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            start_new_session=True,
        )
        outcome = Outcome(t_spawn)
        try:
            _supervise(proc, outcome, timeout, holds)
        finally:
            kill_tree(proc)
            proc.stdin.close()  # type: ignore[union-attr]
            proc.stdout.close()  # type: ignore[union-attr]
        outcome.wall_s = time.time() - t_spawn
        err.seek(0)
        outcome.stderr_tail = "\n".join(err.read().decode(errors="replace").splitlines()[-STDERR_TAIL_LINES:])
    return outcome


def _supervise(proc: subprocess.Popen[bytes], outcome: Outcome, timeout: float, holds: bool) -> None:
    deadline = outcome.t_spawn + timeout
    line, measure = b"", False
    try:
        line = _read_line(proc.stdout.fileno(), deadline)  # type: ignore[union-attr]
        outcome.figures = _parse(line)
        measure = holds and outcome.figures is not None and "unavailable" not in outcome.figures
        if measure:
            outcome.figures |= measure_cluster(keep=proc.pid)  # type: ignore[operator]
        t_release = time.time()
        proc.stdin.close()  # type: ignore[union-attr]
        _wait_exit(proc, deadline)
    except TimeoutError:
        outcome.error = f"timed out after {timeout:g} s"
        return
    t_exit = time.time()
    outcome.exit_code = proc.returncode
    if proc.returncode != 0:
        outcome.error = f"exit code {proc.returncode}"
    elif outcome.figures is None:
        outcome.error = "no result line" if not line else f"bad result line: {line[:200]!r}"
    if measure:
        outcome.figures["shutdown_s"] = t_exit - t_release  # type: ignore[index]
    outcome.teardown_s, outcome.survivors = wait_tree_gone(t_exit, TEARDOWN_DEADLINE_S)


def _read_line(fd: int, deadline: float) -> bytes:
    """The first line on `fd` (b"" at end of file); TimeoutError at `deadline`."""
    buf = b""
    while b"\n" not in buf:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise TimeoutError
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return buf
            buf += chunk
    return buf.split(b"\n", 1)[0]


def _parse(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _wait_exit(proc: subprocess.Popen[bytes], deadline: float) -> None:
    """Reap `proc` the moment it exits (a pidfd, not Popen.wait's 50 ms polling)."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], max(0.0, deadline - time.time()))
    finally:
        os.close(pidfd)
    if not ready:
        raise TimeoutError
    proc.wait()


def live_descendants(keep: int | None = None) -> list[psutil.Process]:
    """The harness's descendants that have not exited; reaps adopted zombies but `keep`."""
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
            elif p.ppid() == os.getpid() and p.pid != keep:
                os.waitpid(p.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass
    return alive


def describe(p: psutil.Process) -> str:
    try:
        return f"{p.pid} {' '.join(p.cmdline()).strip() or p.name()}"[:120]
    except psutil.Error:
        return f"{p.pid} (gone)"


def measure_cluster(keep: int) -> dict[str, Any]:
    """Count the live processes of the workload's cluster and sum their memory."""
    rss = pss = uss = 0
    names = []
    for p in live_descendants(keep):
        try:
            mem = p.memory_full_info()
            names.append(describe(p))
        except psutil.Error:
            continue
        rss, pss, uss = rss + mem.rss, pss + getattr(mem, "pss", 0), uss + mem.uss
    mib = 2**20
    return {"processes": len(names), "rss_mib": rss / mib, "pss_mib": pss / mib, "uss_mib": uss / mib,
            "process_list": names}


def wait_tree_gone(t_exit: float, deadline_s: float) -> tuple[float | None, list[str]]:
    """Poll until no descendant is alive: (seconds since `t_exit`, []) or (None, survivors)."""
    while True:
        alive = live_descendants()
        now = time.time()
        if not alive:
            return now - t_exit, []
        if now - t_exit > deadline_s:
            return None, [describe(p) for p in alive]
        time.sleep(POLL_S)


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL every live descendant (the workload process included) and reap them."""
    deadline = time.time() + KILL_DEADLINE_S
    while True:
        alive = live_descendants(keep=proc.pid)
        for p in alive:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.Error:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if not alive or time.time() > deadline:
            return
        time.sleep(POLL_S)
