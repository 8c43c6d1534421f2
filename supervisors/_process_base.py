"""What every OS-process child shares: the control channel, READY, the stop ladder, the exit record.

Subclasses say how the process is created (:meth:`_spawn`) and how its exit
status is collected (:meth:`_wait_status`); whatever is left in the
process group is killed before the exit is reaped, so no grandchild
outlives it.
"""

from __future__ import annotations

import math
import os
import signal
import socket
from collections.abc import Callable

import trio

from . import _control
from ._child import StartError, wait_any
from ._exit import Exit, ExitKind, exit_from_returncode

FAILURE_REPORT_WAIT = 1.0
CONTROL_READ = 4096  # bytes a read of the control socket asks for


class ProcessBase:
    """A supervised OS process in its own process group."""

    kind = "process"

    def __init__(self, *, handshake: bool, name: str) -> None:
        self.name = name
        self._handshake = handshake
        self._pid: int | None = None
        self._sock: trio.socket.SocketType | None = None
        self._ready = trio.Event()
        self._exited = trio.Event()
        self._exit: Exit | None = None
        self._failure: tuple[str, str, str] | None = None
        self._stop_requested = False
        # Reaped: its pid (and process group id) may belong to another process already, while
        # the exit is still being put together (reading a last Failure line): signal nothing.
        self._reaped = False
        self._reader_scope = trio.CancelScope(shield=True)
        self._reader_done = trio.Event()
        self.ready_info: dict[str, str] = {}  # what the child sent with READY
        self.on_spawned: Callable[[ProcessBase], None] | None = None  # e.g. start reading its pipes
        self.stdout: trio.lowlevel.FdStream | None = None
        self.stderr: trio.lowlevel.FdStream | None = None

    @property
    def pid(self) -> int | None:
        return self._pid

    # ---- for subclasses ------------------------------------------------------

    async def _spawn(self, control: socket.socket | None) -> int:
        """Create the process (handing it ``control``, the child's end); return its pid."""
        raise NotImplementedError

    async def _wait_status(self) -> int:
        """Wait for the exit; kill the rest of its group; reap it; return its returncode."""
        raise NotImplementedError

    # ---- starting ------------------------------------------------------------

    async def start(self, nursery: trio.Nursery) -> None:
        try:
            child_sock = None
            if self._handshake:
                parent_sock, child_sock = socket.socketpair()
                self._sock = trio.socket.from_stdlib_socket(parent_sock)
            try:
                self._pid = await self._spawn(child_sock)
            finally:
                if child_sock is not None:
                    child_sock.close()
            if self.on_spawned is not None:
                self.on_spawned(self)
            nursery.start_soon(self._reap)
            if self._sock is not None:
                nursery.start_soon(self._read_control)
            else:
                self._reader_done.set()
                self._ready.set()
            await wait_any(self._ready, self._exited)
        except BaseException:
            if self._sock is not None and self._pid is None:
                self._sock.close()
            with trio.CancelScope(shield=True):
                await self.stop(0, "start cancelled")
            raise
        if not self._ready.is_set():
            assert self._exit is not None
            raise StartError(self.name, self._exit)

    async def _read_control(self) -> None:
        assert self._sock is not None
        lines = _control.LineBuffer()
        try:
            with self._reader_scope:
                # Small reads: recv(n) allocates n bytes first, and a long-lived parent's C heap
                # fragments under a 64 KiB block per message (control lines are short; longer
                # ones arrive in pieces, joined by the LineBuffer).
                while data := await self._sock.recv(CONTROL_READ):
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
            self.ready_info = dict(message.info)
            self._ready.set()
        elif isinstance(message, _control.Failure):
            self._failure = (message.type, message.message, message.traceback)

    async def _reap(self) -> None:
        with trio.CancelScope(shield=True):
            returncode = await self._wait_status()
            self._reaped = True
            # A Failure line the child sent just before dying may still be
            # in flight: read to EOF, but never hang on a leaked socket.
            with trio.move_on_after(FAILURE_REPORT_WAIT):
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

    # ---- stopping --------------------------------------------------------------

    def _signal_group(self, sig: int) -> None:
        if self._pid is None or self._reaped:
            return
        try:
            os.killpg(self._pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    async def wait(self) -> Exit:
        await self._exited.wait()
        assert self._exit is not None
        return self._exit

    async def stop(self, timeout: float | None, reason: str) -> Exit:
        self._stop_requested = True
        if self._pid is None:
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
