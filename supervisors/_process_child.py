"""Children that are fresh OS processes (exec): spawn on the Trio thread, reap via pidfd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

import trio

from . import _control
from ._process_base import ProcessBase

_File = int | IO[Any] | str | os.PathLike[str] | None


class ProcessChild(ProcessBase):
    """A child that is a fresh OS process (never a fork of a Trio process).

    The process runs in its own process group. It is spawned on the Trio
    thread itself: spawning from a ``trio.to_thread`` worker would tie
    ``PR_SET_PDEATHSIG`` to that short-lived thread. ``stdout``/``stderr``
    take what ``subprocess.Popen`` takes, or a path to append to. With
    ``handshake=True`` the program must call :func:`supervisors.connect_parent`
    and ``link.ready()``; with ``handshake=False`` it is READY once spawned
    and is stopped by SIGTERM (wrap foreign programs with :meth:`command`
    instead, which also kills them if the supervisor dies).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        handshake: bool = True,
        stdin: _File = subprocess.DEVNULL,
        stdout: _File = None,
        stderr: _File = None,
    ) -> None:
        super().__init__(handshake=handshake, name=os.path.basename(argv[0]) if argv else "process")
        self.argv = list(argv)
        self._env = dict(os.environ if env is None else env)
        self._cwd = cwd
        self._files = (stdin, stdout, stderr)
        self._popen: subprocess.Popen[bytes] | None = None

    @classmethod
    def command(cls, argv: Sequence[str], *, group: bool = False, **kwargs: Any) -> ProcessChild:
        """Supervise a program that knows nothing of supervisors.

        A small Python shim runs ``argv``, reports READY, turns STOP into
        SIGTERM (``group=True``: to the program's whole process group, for
        shell commands), and dies with its whole process group if the
        supervisor dies.
        """
        shim = [sys.executable, "-m", "supervisors._exec_shim", *(["--group"] if group else []), "--", *argv]
        return cls(shim, **kwargs)

    async def _spawn(self, control: socket.socket | None) -> int:
        env = dict(self._env)
        pass_fds: tuple[int, ...] = ()
        if control is not None:
            env[_control.CONTROL_FD_ENV] = str(control.fileno())
            env[_control.PARENT_PID_ENV] = str(os.getpid())
            pass_fds = (control.fileno(),)
        opened = [_open(f) for f in self._files]
        try:
            self._popen = subprocess.Popen(
                self.argv,
                env=env,
                cwd=self._cwd,
                stdin=opened[0],
                stdout=opened[1],
                stderr=opened[2],
                pass_fds=pass_fds,
                process_group=0,
            )
        finally:
            for handle, given in zip(opened, self._files):
                if handle is not given:
                    handle.close()
        self.stdout = _wrap(self._popen, "stdout")
        self.stderr = _wrap(self._popen, "stderr")
        return self._popen.pid

    async def _wait_status(self) -> int:
        assert self._popen is not None
        pidfd = os.pidfd_open(self._popen.pid)
        try:
            await trio.lowlevel.wait_readable(pidfd)
        finally:
            trio.lowlevel.notify_closing(pidfd)
            os.close(pidfd)
        # The exited leader still holds its group id until reaped, so this
        # cannot hit a recycled group: it ends any stragglers it left.
        self._signal_group(signal.SIGKILL)
        return self._popen.wait()


def _open(target: _File) -> Any:
    """A path becomes a file opened for appending (closed again after the spawn)."""
    if isinstance(target, (str, os.PathLike)):
        return open(target, "ab")
    return target


def _wrap(popen: subprocess.Popen[bytes], name: str) -> trio.lowlevel.FdStream | None:
    pipe = getattr(popen, name)
    if pipe is None:
        return None
    stream = trio.lowlevel.FdStream(os.dup(pipe.fileno()))
    pipe.close()
    return stream
