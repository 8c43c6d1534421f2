"""Starting a child process with its control channel (standard library only, so that a
program can start its first child before importing Trio and the rest)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

CONTROL_FD_ENV = "SUPERVISORS_CONTROL_FD"
PARENT_PID_ENV = "SUPERVISORS_PARENT_PID"

File = int | IO[Any] | str | os.PathLike[str] | None


class Spawned:
    """A process started by :func:`spawn`, not yet supervised: pass it to
    ``ProcessChild(..., spawned=...)``, whose first start adopts it, or :meth:`kill` it."""

    def __init__(self, popen: subprocess.Popen[bytes], control: socket.socket | None) -> None:
        self.popen = popen
        self.control = control  # the supervisor's end of the control channel
        self.adopted = False

    def kill(self) -> None:
        """SIGKILL its process group and reap it (unless a supervisor adopted it); idempotent."""
        if self.adopted:
            return
        self.adopted = True  # nobody may adopt it any more
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        if self.control is not None:
            self.control.close()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    handshake: bool = True,
    stdin: File = subprocess.DEVNULL,
    stdout: File = None,
    stderr: File = None,
) -> Spawned:
    """Start ``argv`` now, from the calling thread, as :class:`ProcessChild` would.

    The process runs in its own process group; with ``handshake`` it gets
    the child's end of a control channel. Its parent-death signal is tied
    to the calling thread (``PR_SET_PDEATHSIG``): call this from a thread
    that lives as long as the child should (the main thread).
    """
    parent, child = socket.socketpair() if handshake else (None, None)
    try:
        popen = popen_child(argv, dict(os.environ if env is None else env), cwd, (stdin, stdout, stderr), child)
    except BaseException:
        if parent is not None:
            parent.close()
        raise
    finally:
        if child is not None:
            child.close()
    return Spawned(popen, parent)


def popen_child(
    argv: Sequence[str], env: dict[str, str], cwd: str | None, files: tuple[File, File, File], control: socket.socket | None
) -> subprocess.Popen[bytes]:
    """``Popen`` in a new process group, handing it ``control`` (paths in ``files`` are opened for appending)."""
    pass_fds: tuple[int, ...] = ()
    if control is not None:
        env[CONTROL_FD_ENV] = str(control.fileno())
        env[PARENT_PID_ENV] = str(os.getpid())
        pass_fds = (control.fileno(),)
    opened = [_open(f) for f in files]
    try:
        return subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=opened[0], stdout=opened[1], stderr=opened[2], pass_fds=pass_fds,
            process_group=0,
        )  # fmt: skip
    finally:
        for handle, given in zip(opened, files):
            if handle is not given:
                handle.close()


def _open(target: File) -> Any:
    """A path becomes a file opened for appending (closed again after the spawn)."""
    if isinstance(target, (str, os.PathLike)):
        return open(target, "ab")
    return target
