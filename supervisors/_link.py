"""The child side of a process child: READY, STOP, failure reports, and the parent watchdog.

A child process calls :func:`connect_parent` early. From then on, if the
supervising process dies for any reason (SIGKILL included), this process and
its whole process group are killed: a watchdog thread sees EOF on the
inherited control socket, and ``PR_SET_PDEATHSIG`` backs it up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from . import _control

_PR_SET_PDEATHSIG = 1
_link: ParentLink | None = None
_link_lock = threading.Lock()


class ParentLink:
    """This process's line to its supervisor (a no-op when run standalone)."""

    def __init__(self, sock: socket.socket | None) -> None:
        self._sock = sock
        self._send_lock = threading.Lock()
        self._on_stop: Callable[[str], None] = _default_on_stop
        self.stop_requested = False
        self.stop_reason = ""

    @property
    def supervised(self) -> bool:
        """Whether a supervisor started this process."""
        return self._sock is not None

    def ready(self, info: dict[str, str] | None = None) -> None:
        """Tell the supervisor this child has started (with ``info`` for it). Call once."""
        self._send(_control.Ready(info=info or {}))

    def report_failure(self, exc: BaseException) -> None:
        """Tell the supervisor why this child is about to exit abnormally."""
        tb = "".join(traceback.format_exception(exc))
        self._send(_control.Failure(type=type(exc).__qualname__, message=str(exc), traceback=tb))

    def on_stop(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` (from the watchdog thread) when asked to stop.

        The default sends SIGTERM to this process.
        """
        self._on_stop = callback

    def die(self) -> None:
        """Kill this process now, with its process group if it leads one: what the watchdog
        does when the parent is gone, for a child that learns by other means that it must
        not go on (its node was declared dead, say)."""
        _die()

    def _send(self, message: _control.Message) -> None:
        if self._sock is None:
            return
        with self._send_lock:
            try:
                self._sock.sendall(_control.encode(message))
            except OSError:
                pass  # the parent is gone; the watchdog ends us

    def _watch(self) -> None:
        assert self._sock is not None
        lines = _control.LineBuffer()
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                _die()
            try:
                for line in lines.feed(data):
                    self._dispatch(_control.decode(line))
            except _control.ProtocolError:
                _die()

    def _dispatch(self, message: _control.Message) -> None:
        if isinstance(message, _control.Stop) and not self.stop_requested:
            self.stop_requested = True
            self.stop_reason = message.reason
            self._on_stop(message.reason)


def connect_parent() -> ParentLink:
    """Connect to the supervisor that started this process; idempotent.

    Starts the parent watchdog. Outside a supervisor it returns a link whose
    methods do nothing, so the same program also runs standalone.
    """
    global _link
    with _link_lock:
        if _link is None:
            _link = _connect()
        return _link


def _connect() -> ParentLink:
    fd_text = os.environ.pop(_control.CONTROL_FD_ENV, None)
    parent_text = os.environ.pop(_control.PARENT_PID_ENV, None)
    if fd_text is None:
        return ParentLink(None)
    sock = socket.socket(fileno=int(fd_text))
    sock.set_inheritable(False)
    if threading.current_thread() is threading.main_thread():
        die_with_group_on_parent_death()  # what it starts goes with it, not only itself
    else:
        _set_parent_death_signal()  # (a handler needs the main thread)
    if parent_text is not None and os.getppid() != int(parent_text):
        _die()  # the parent died before we could arm the death signal
    link = ParentLink(sock)
    threading.Thread(target=link._watch, name="supervisors-watchdog", daemon=True).start()
    return link


def _set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # the watchdog thread still covers us


def die_with_group_on_parent_death() -> None:
    """When the supervisor dies, kill this process's whole group (what it started), not only it.

    Every supervised child does this as it connects (the exec shim too). The death signal
    is SIGHUP, handled by killing the group: a plain SIGKILL ended the child at once, before
    its watchdog could end the rest, and its own children lived on as orphans. The price:
    a child whose main thread is stuck in C code holding the GIL dies when that call returns.
    """
    signal.signal(signal.SIGHUP, lambda signum, frame: _die())
    _set_parent_death_signal(signal.SIGHUP)


def _default_on_stop(reason: str) -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _die() -> None:
    """Kill this process and, if it leads its group, every process in the group."""
    if os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def run_child(async_fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run a Trio program as a supervised child, and exit the process.

    ``async_fn(link, *args)`` must call ``link.ready()`` once it has started.
    A STOP request cancels it (exit status 0); an exception is reported to
    the supervisor and exits with status 1; ``sys.exit(n)`` exits with ``n``.
    """
    link = connect_parent()
    try:
        trio.run(_run_until_stopped, link, async_fn, args)
    except Exception as exc:
        exc = _single(exc)
        link.report_failure(exc)
        traceback.print_exception(exc)
        sys.exit(1)
    except BaseExceptionGroup as group:  # sys.exit() inside the program: exit with its status
        single = _single(group)
        if isinstance(single, SystemExit):
            raise single from None
        raise
    sys.exit(0)


def _single(exc: BaseException) -> BaseException:
    """The lone leaf of nested one-member exception groups, else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


async def _run_until_stopped(
    link: ParentLink, async_fn: Callable[..., Awaitable[Any]], args: tuple[Any, ...]
) -> None:
    token = trio.lowlevel.current_trio_token()
    # Once the program has stopped, a later SIGTERM (a stop ladder's, when the first came from
    # elsewhere: `actorlib stop` signals a head and its daemon at once) must not cut its exit
    # short: the receiver below hands back this disposition when it closes. SIGKILL still ends
    # a process that hangs on its way out.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with trio.CancelScope() as scope, trio.open_signal_receiver(signal.SIGTERM) as signals:
        # SIGTERM (the stop ladder's second step, or `kill`) stops it the same orderly way.
        async def on_sigterm() -> None:
            async for _ in signals:
                scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(on_sigterm)
            await _run_body(link, async_fn, args, token, scope)
            nursery.cancel_scope.cancel()


async def _run_body(
    link: ParentLink,
    async_fn: Callable[..., Awaitable[Any]],
    args: tuple[Any, ...],
    token: trio.lowlevel.TrioToken,
    scope: trio.CancelScope,
) -> None:
    def stop(reason: str) -> None:
        try:
            token.run_sync_soon(scope.cancel)
        except trio.RunFinishedError:
            pass

    link.on_stop(stop)
    if link.stop_requested:
        scope.cancel()
    await async_fn(link, *args)
