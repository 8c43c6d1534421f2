"""A zygote: a template process that forks new children fast, with modules already imported.

Create it with :meth:`Zygote.fork` *before* any thread or Trio loop exists in
this process (forking a Trio process is never safe); the zygote itself never
starts a thread. It forks children on request, puts each in its own process
group, hands it the file descriptors it was sent, reaps it, and reports its
exit status. Measured: a few milliseconds per child instead of ~0.2 s for a
fresh interpreter that imports Trio.

A zygote dies with the process that forked it (EOF on its socket, and
PR_SET_PDEATHSIG), SIGKILLing every child's process group as it goes; its
children die with it (PR_SET_PDEATHSIG, armed by
:func:`supervisors.connect_parent`, which kills their groups too) and with their
supervisor (their own control sockets). Nothing any of them started outlives them.
"""

from __future__ import annotations

import array
import contextlib
import gc
import importlib
import mmap
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

import msgspec
import trio

from . import _control
from ._link import _set_parent_death_signal

MAX_MESSAGE = 1 << 20
MAX_FDS = 8


def _message_buffer() -> memoryview:
    """Room for one message, read into again and again: ``recv(MAX_MESSAGE)`` would allocate
    a megabyte per message and shrink it, and such short-lived large blocks among long-lived
    small ones fragment a long-lived process's C heap (the head's, here: a worker's start and
    exit are a message each). Anonymous memory: only the pages messages reach are resident."""
    return memoryview(mmap.mmap(-1, MAX_MESSAGE))


def _recv_fds(sock: socket.socket, buffer: memoryview) -> tuple[bytes, list[int]]:
    """One message and the file descriptors sent with it, as ``socket.recv_fds`` gives them."""
    fds = array.array("i")
    size, ancillary, _flags, _addr = sock.recvmsg_into([buffer], socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return bytes(buffer[:size]), list(fds)


class ZygoteError(Exception):
    """The zygote could not fork a child (or is gone)."""


class _Spawn(msgspec.Struct, tag="spawn"):
    id: int
    target: str
    args: list[Any]
    env: dict[str, str]
    cwd: str
    stdio: list[bool]  # which of stdin/stdout/stderr follow the control fd


class _Spawned(msgspec.Struct, tag="spawned"):
    id: int
    pid: int


class _Failed(msgspec.Struct, tag="failed"):
    id: int
    error: str


class _Exited(msgspec.Struct, tag="exited"):
    pid: int
    code: int


_encoder = msgspec.json.Encoder()
_request = msgspec.json.Decoder(_Spawn)
_reply = msgspec.json.Decoder(_Spawned | _Failed | _Exited)


class Zygote:
    """The supervising side of a zygote process."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._trio_sock: trio.socket.SocketType | None = None
        self._ids = iter(range(1, 1 << 62))
        self._spawning: dict[int, tuple[trio.Event, list[Any]]] = {}
        self._exits: dict[int, int] = {}
        self._exit_events: dict[int, trio.Event] = {}
        self._lock: trio.Lock | None = None
        self.alive = True

    @classmethod
    def fork(cls, preload: Iterable[str] = (), setup: Callable[[], object] | None = None) -> Zygote:
        """Import ``preload`` modules, then fork the zygote. Call before any thread starts.

        ``setup`` runs in the zygote right after the fork (to set its process title, say).
        """
        for module in preload:
            importlib.import_module(module)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            parent.close()
            _zygote_main(child, setup)
        child.close()
        return cls(pid, parent)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read the zygote's replies and exit reports; run this for as long as children are spawned."""
        self._trio_sock = trio.socket.from_stdlib_socket(self._sock)
        self._lock = trio.Lock()
        buffer = _message_buffer()
        task_status.started()
        try:
            while size := await self._trio_sock.recv_into(buffer):
                self._dispatch(_reply.decode(buffer[:size]))
        except OSError:
            pass
        finally:
            self._lost()

    def _dispatch(self, message: _Spawned | _Failed | _Exited) -> None:
        if isinstance(message, _Exited):
            self._exits[message.pid] = message.code
            event = self._exit_events.pop(message.pid, None)
            if event is not None:
                event.set()
            return
        waiting = self._spawning.pop(message.id, None)
        if waiting is not None:
            waiting[1].append(message)
            waiting[0].set()

    def _lost(self) -> None:
        """The zygote is gone: its children were killed with it (PDEATHSIG), and what they
        started is killed now, by process group (the zygote did that as it reaped them; no
        one else will: they would live on as orphans)."""
        self.alive = False
        for event, _slot in self._spawning.values():
            event.set()
        for pid, event in list(self._exit_events.items()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)  # the group outlives its leader while members remain
            self._exits.setdefault(pid, -signal.SIGKILL)
            event.set()

    async def spawn(
        self,
        target: str,
        *,
        args: list[Any],
        env: Mapping[str, str],
        cwd: str,
        fds: list[int],
        stdio: list[bool],
    ) -> int:
        """Fork a child that runs ``target`` ("module:function") with ``args``; return its pid.

        ``fds`` are the control socket's child end, then the stdin, stdout and
        stderr flagged in ``stdio``; the caller closes its copies afterwards.
        """
        if not self.alive or self._trio_sock is None or self._lock is None:
            raise ZygoteError("the zygote is not running")
        request_id = next(self._ids)
        done = trio.Event()
        slot: list[Any] = []
        self._spawning[request_id] = (done, slot)
        request = _encoder.encode(_Spawn(id=request_id, target=target, args=args, env=dict(env), cwd=cwd, stdio=stdio))
        async with self._lock:
            await self._trio_sock.sendmsg([request], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))])
        await done.wait()
        if not slot:
            raise ZygoteError("the zygote died")
        reply = slot[0]
        if isinstance(reply, _Failed):
            raise ZygoteError(f"the zygote could not fork {target}: {reply.error}")
        self._exit_events[reply.pid] = trio.Event()
        return reply.pid

    async def wait_exit(self, pid: int) -> int:
        """The returncode of a child spawned here (negative: killed by that signal)."""
        if pid not in self._exits:
            event = self._exit_events.setdefault(pid, trio.Event())
            if not self.alive:
                self._exits.setdefault(pid, -signal.SIGKILL)
            else:
                await event.wait()
        return self._exits.pop(pid)

    def close(self) -> None:
        """Kill and reap the zygote (its children die with it)."""
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


# ---- the zygote process ------------------------------------------------------------


_children: set[int] = set()  # in the zygote: the children forked and not yet reaped


def _zygote_main(sock: socket.socket, setup: Callable[[], object] | None) -> NoReturn:
    try:
        os.setpgid(0, 0)
        # When whoever forked us dies, take every child's process group along (what the
        # children started, too), then go: SIGHUP, handled here, instead of a bare SIGKILL.
        signal.signal(signal.SIGHUP, lambda signum, frame: _end_families())
        _set_parent_death_signal(signal.SIGHUP)
        if setup is not None:
            setup()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Children share our pages until they write to them; a collection in a child writes to
        # the header of every object it examines. Frozen, these objects are never examined.
        gc.collect()
        gc.freeze()
        buffer = _message_buffer()
        while True:
            readable, _, _ = select.select([sock, wake_r], [], [])
            if wake_r in readable:
                os.read(wake_r, 4096)
                _reap_all(sock)
            if sock in readable:
                try:
                    data, fds = _recv_fds(sock, buffer)
                except ConnectionResetError:
                    data, fds = b"", []
                if not data:
                    _end_families()  # whoever forked us is gone
                _handle(sock, data, fds, (wake_r, wake_w))
    except BaseException:
        traceback.print_exc()
    os._exit(1)


def _end_families() -> NoReturn:
    """SIGKILL every child's process group (never a recycled one: they are not reaped yet), and exit."""
    for pid in _children:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    os._exit(0)


def _handle(sock: socket.socket, data: bytes, fds: list[int], private: tuple[int, int]) -> None:
    try:
        request = _request.decode(data)
    except msgspec.DecodeError as exc:
        for fd in fds:
            os.close(fd)
        sock.send(_encoder.encode(_Failed(id=0, error=f"bad request: {exc}")))
        return
    try:
        gc.freeze()  # what this request allocated too (a few objects)
        pid = os.fork()
    except OSError as exc:
        reply: Any = _Failed(id=request.id, error=str(exc))
    else:
        if pid == 0:
            sock.close()
            for fd in private:
                os.close(fd)
            _child_main(request, fds)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # also done in the child: whichever runs first wins
        _children.add(pid)
        reply = _Spawned(id=request.id, pid=pid)
    for fd in fds:
        os.close(fd)
    sock.send(_encoder.encode(reply))


def _reap_all(sock: socket.socket) -> None:
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if info is None:
            return
        pid = info.si_pid
        # Not reaped yet, so the group id is still its: end any stragglers.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        _children.discard(pid)
        sock.send(_encoder.encode(_Exited(pid=pid, code=os.waitstatus_to_exitcode(status))))


def _child_main(request: _Spawn, fds: list[int]) -> NoReturn:
    code = 1
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control, *stdio_fds = fds
        _install_stdio(request.stdio, stdio_fds)
        os.environ.clear()
        os.environ.update(request.env)
        os.environ[_control.CONTROL_FD_ENV] = str(control)
        os.environ[_control.PARENT_PID_ENV] = str(os.getppid())
        os.set_inheritable(control, False)
        os.chdir(request.cwd)
        module, _, function = request.target.partition(":")
        sys.argv = [request.target]
        getattr(importlib.import_module(module), function)(*request.args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    os._exit(code)


def _install_stdio(flags: list[bool], fds: list[int]) -> None:
    given = iter(fds)
    for target, present in enumerate(flags):
        if present:
            fd = next(given)
            os.dup2(fd, target)
            os.close(fd)
        elif target == 0:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[attr-defined]
