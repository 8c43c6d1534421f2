"""Children that are OS processes: spawn, READY handshake, graceful stop ladder, reaping."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

import trio

from . import _control
from ._child import StartError, wait_any
from ._exit import Exit, ExitKind, exit_from_returncode

_File = int | IO[Any] | str | os.PathLike[str] | None


class ProcessChild:
    """A child that is a fresh OS process (never a fork of a Trio process).

    The process runs in its own process group. It is spawned on the Trio
    thread itself: spawning from a ``trio.to_thread`` worker would tie
    ``PR_SET_PDEATHSIG`` to that short-lived thread. ``stdout``/``stderr``
    take what ``subprocess.Popen`` takes, or a path to append to. With ``handshake=True``
    the program must call :func:`supervisors.connect_parent` and
    ``link.ready()``; with ``handshake=False`` it is READY once spawned and is
    stopped by SIGTERM (wrap foreign programs with :meth:`command` instead,
    which also kills them if the supervisor dies).

    After the process exits, whatever is left in its process group is
    SIGKILLed before the exit is reaped, so no grandchild outlives it.
    """

    kind = "process"

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
        self.argv = list(argv)
        self._env = dict(os.environ if env is None else env)
        self._cwd = cwd
        self._handshake = handshake
        self._files = (stdin, stdout, stderr)
        self._popen: subprocess.Popen[bytes] | None = None
        self._sock: trio.socket.SocketType | None = None
        self._ready = trio.Event()
        self._exited = trio.Event()
        self._exit: Exit | None = None
        self._failure: tuple[str, str, str] | None = None
        self._stop_requested = False
        self._reader_scope = trio.CancelScope(shield=True)
        self._reader_done = trio.Event()
        self.stdout: trio.lowlevel.FdStream | None = None
        self.stderr: trio.lowlevel.FdStream | None = None

    @classmethod
    def command(cls, argv: Sequence[str], **kwargs: Any) -> ProcessChild:
        """Supervise a program that knows nothing of supervisors.

        A small Python shim runs ``argv``, reports READY, turns STOP into
        SIGTERM, and dies with its whole process group if the supervisor dies.
        """
        shim = [sys.executable, "-m", "supervisors._exec_shim", "--", *argv]
        return cls(shim, **kwargs)

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen is not None else None

    async def start(self, nursery: trio.Nursery) -> None:
        try:
            self._spawn()
            nursery.start_soon(self._reap)
            if self._sock is not None:
                nursery.start_soon(self._read_control)
            else:
                self._reader_done.set()
                self._ready.set()
            await wait_any(self._ready, self._exited)
        except BaseException:
            with trio.CancelScope(shield=True):
                await self.stop(0, "start cancelled")
            raise
        if not self._ready.is_set():
            assert self._exit is not None
            raise StartError(os.path.basename(self.argv[0]), self._exit)

    def _spawn(self) -> None:
        env = dict(self._env)
        pass_fds: tuple[int, ...] = ()
        child_sock = None
        if self._handshake:
            parent_sock, child_sock = socket.socketpair()
            self._sock = trio.socket.from_stdlib_socket(parent_sock)
            env[_control.CONTROL_FD_ENV] = str(child_sock.fileno())
            env[_control.PARENT_PID_ENV] = str(os.getpid())
            pass_fds = (child_sock.fileno(),)
        stdin, stdout, stderr = (_open(f) for f in self._files)
        try:
            self._popen = subprocess.Popen(
                self.argv,
                env=env,
                cwd=self._cwd,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                pass_fds=pass_fds,
                process_group=0,
            )
        except BaseException:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
            raise
        finally:
            if child_sock is not None:
                child_sock.close()
            for opened, given in zip((stdin, stdout, stderr), self._files):
                if opened is not given:
                    opened.close()  # type: ignore[union-attr]
        self.stdout = _wrap(self._popen, "stdout")
        self.stderr = _wrap(self._popen, "stderr")

    async def _read_control(self) -> None:
        assert self._sock is not None
        lines = _control.LineBuffer()
        try:
            with self._reader_scope:
                while data := await self._sock.recv(65536):
                    for line in lines.feed(data):
                        self._on_message(_control.decode(line))
        except OSError:
            pass
        except _control.ProtocolError as exc:
            self._failure = ("ProtocolError", str(exc), "")
            self._signal_group(signal.SIGKILL)
        finally:
            self._reader_done.set()

    def _on_message(self, message: _control.Message) -> None:
        if isinstance(message, _control.Ready):
            self._ready.set()
        elif isinstance(message, _control.Failure):
            self._failure = (message.type, message.message, message.traceback)

    async def _reap(self) -> None:
        assert self._popen is not None
        with trio.CancelScope(shield=True):
            pidfd = os.pidfd_open(self._popen.pid)
            try:
                await trio.lowlevel.wait_readable(pidfd)
            finally:
                trio.lowlevel.notify_closing(pidfd)
                os.close(pidfd)
            # The exited leader still holds its group id until reaped, so this
            # cannot hit a recycled group: it ends any stragglers it left.
            self._signal_group(signal.SIGKILL)
            returncode = self._popen.wait()
            # A Failure line the child sent just before dying may still be
            # in flight: read to EOF, but never hang on a leaked socket.
            with trio.move_on_after(1.0):
                await self._reader_done.wait()
            self._reader_scope.cancel()
            if self._sock is not None:
                self._sock.close()
            self._exit = exit_from_returncode(
                returncode,
                stop_requested=self._stop_requested,
                at=trio.current_time(),
                failure=self._failure,
            )
            self._exited.set()

    def _signal_group(self, sig: int) -> None:
        if self._popen is None:
            return
        try:
            os.killpg(self._popen.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def wait(self) -> Exit:
        await self._exited.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, timeout: float | None, reason: str) -> Exit:
        self._stop_requested = True
        if self._popen is None:
            return Exit(kind=ExitKind.SHUTDOWN, reason="never spawned", at=trio.current_time())
        if not self._exited.is_set():
            await self._stop_ladder(math.inf if timeout is None else timeout, reason)
        return await self.wait()

    async def _stop_ladder(self, timeout: float, reason: str) -> None:
        if timeout > 0:
            if not await self._send(_control.Stop(reason=reason)):
                self._signal_group(signal.SIGTERM)
            with trio.move_on_after(timeout / 2):
                await self._exited.wait()
                return
            self._signal_group(signal.SIGTERM)
            with trio.move_on_after(timeout / 2):
                await self._exited.wait()
                return
        self._signal_group(signal.SIGKILL)

    async def _send(self, message: _control.Message) -> bool:
        if self._sock is None or not self._ready.is_set():
            return False
        try:
            await self._sock.send(_control.encode(message))
        except OSError:
            return False
        return True


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
