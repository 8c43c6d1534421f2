"""Children that are fresh OS processes (exec): spawn on the Trio thread, reap via pidfd."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from ._process_base import ProcessBase
from ._spawn import File as _File
from ._spawn import Spawned, popen_child


class ProcessChild(ProcessBase):
    """A child that is a fresh OS process (never a fork of a Trio process).

    The process runs in its own process group. It is spawned on the Trio
    thread itself: spawning from a ``trio.to_thread`` worker would tie
    ``PR_SET_PDEATHSIG`` to that short-lived thread. ``stdout``/``stderr``
    take what ``subprocess.Popen`` takes, or a path to append to. With
    ``handshake=True`` the program must call :func:`supervisors.connect_parent`
    and ``link.ready()``; with ``handshake=False`` it is READY once spawned
    and is stopped by SIGTERM (wrap foreign programs with :meth:`command`
    instead, which also kills them if the supervisor dies). Given ``spawned``
    (a process :func:`spawn` started earlier with the same ``handshake``), its
    first start adopts that process instead of spawning one.
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
        spawned: Spawned | None = None,
    ) -> None:
        super().__init__(handshake=handshake, name=os.path.basename(argv[0]) if argv else "process")
        self._spawned = spawned
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
        spawned, self._spawned = self._spawned, None
        if spawned is not None and not spawned.adopted:
            spawned.adopted = True
            self._popen = spawned.popen
            if self._sock is not None and spawned.control is not None:  # its channel replaces the new one
                self._sock.close()
                self._sock = trio.socket.from_stdlib_socket(spawned.control)
        else:
            self._popen = popen_child(self.argv, dict(self._env), self._cwd, self._files, control)
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


def _wrap(popen: subprocess.Popen[bytes], name: str) -> trio.lowlevel.FdStream | None:
    pipe = getattr(popen, name)
    if pipe is None:
        return None
    stream = trio.lowlevel.FdStream(os.dup(pipe.fileno()))
    pipe.close()
    return stream
