"""Children forked from a zygote: a running interpreter with modules imported, in milliseconds."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Mapping, Sequence
from typing import IO, Any

import trio

from ._process_base import ProcessBase
from ._zygote import Zygote

_File = int | IO[Any] | str | os.PathLike[str] | None


class ForkedChild(ProcessBase):
    """A process child forked from ``zygote``, running ``target`` ("module:function").

    Supervised exactly like a :class:`ProcessChild` (READY handshake, stop
    ladder, its own process group, nothing outliving it); only creation
    differs. ``stdout``/``stderr`` may be ``subprocess.PIPE`` (then read
    ``.stdout``/``.stderr``), a path to append to, or None to share the
    zygote's.
    """

    def __init__(
        self,
        zygote: Zygote,
        target: str,
        *,
        args: Sequence[Any] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        handshake: bool = True,
        stdout: _File = None,
        stderr: _File = None,
    ) -> None:
        super().__init__(handshake=handshake, name=target)
        self.zygote = zygote
        self.target = target
        self._args = list(args)
        self._env = dict(os.environ if env is None else env)
        self._cwd = cwd or os.getcwd()
        self._files = (stdout, stderr)

    async def _spawn(self, control: socket.socket | None) -> int:
        if control is None:
            raise ValueError("forked children always use the control channel (handshake=True)")
        send: list[int] = [control.fileno()]
        keep: list[int] = []
        flags = [False]  # stdin: /dev/null
        try:
            for index, target in enumerate(self._files):
                fd = self._fd_for(index, target, keep)
                flags.append(fd is not None)
                if fd is not None:
                    send.append(fd)
            return await self.zygote.spawn(
                self.target, args=self._args, env=self._env, cwd=self._cwd, fds=send, stdio=flags
            )
        finally:
            for fd in send[1:]:
                os.close(fd)

    def _fd_for(self, index: int, target: _File, keep: list[int]) -> int | None:
        """The fd to hand the child for stdout (0) or stderr (1); set up our end of a pipe."""
        if target is None:
            return None
        if target == subprocess.PIPE:
            read, write = os.pipe()
            stream = trio.lowlevel.FdStream(read)
            if index == 0:
                self.stdout = stream
            else:
                self.stderr = stream
            return write
        if isinstance(target, (str, os.PathLike)):
            return os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        fileno = target if isinstance(target, int) else target.fileno()
        return os.dup(fileno)

    async def _wait_status(self) -> int:
        assert self._pid is not None
        return await self.zygote.wait_exit(self._pid)
