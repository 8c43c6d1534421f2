"""Session directories: one per cluster, holding its token, sockets and logs.

::

    <tmp>/actorlib-<uid>/session_<date>_<time>_<pid>/
        token       the cluster token (0600)
        sockets/    Unix sockets of the head, nodes, stores, workers, drivers
        logs/       head.out/.err, w-<id>-<pid>.out/.err per worker
    <tmp>/actorlib-<uid>/session_latest -> the newest session
"""

from __future__ import annotations

import contextlib
import datetime
import os
import shutil
import tempfile
from pathlib import Path

from ._tokens import new_token, write_token

SESSION_PREFIX = "session_"
# Unix socket paths are limited to 107 bytes; leave room for "sockets/w-<12 hex>.sock".
_MAX_SESSION_PATH = 107 - len("/sockets/store-0123456789ab.sock")


def sessions_root(tmpdir: str | None = None) -> Path:
    """Where sessions go: under ``tmpdir`` (default $ACTORLIB_TMPDIR, else the system's), unless
    that is too long for socket paths: then /tmp."""
    # Not "actorlib": a directory of that name in a script's folder would shadow the package.
    root = Path(tmpdir or os.environ.get("ACTORLIB_TMPDIR", tempfile.gettempdir())) / f"actorlib-{os.getuid()}"
    if len(str(root)) + 48 > _MAX_SESSION_PATH:
        root = Path(f"/tmp/actorlib-{os.getuid()}")
    return root


def new_session(with_token: bool = True) -> Path:
    """Create a fresh session directory; with a new token (a head's or a local cluster's)
    it also becomes session_latest."""
    root = sessions_root()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    session = root / f"{SESSION_PREFIX}{stamp}_{os.getpid()}"
    session.mkdir(mode=0o700)
    (session / "logs").mkdir()
    (session / "sockets").mkdir()
    if not with_token:
        return session  # a worker node's session: session_latest keeps naming the head's
    write_token(session / "token", new_token())
    latest = root / "session_latest"
    with contextlib.suppress(OSError):
        tmp = root / f".latest-{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(session.name)
        tmp.replace(latest)
    return session


def head_address(session_dir: str | Path) -> str:
    """Where the head of the cluster in ``session_dir`` listens on this machine."""
    return f"unix:{Path(session_dir) / 'sockets' / 'head.sock'}"


def remove_sockets(session: Path) -> None:
    """Remove a stopped session's socket directory and its default spill directory, which holds
    no named file (docs/decisions/0014-spilling.md); logs stay for inspection."""
    shutil.rmtree(session / "sockets", ignore_errors=True)
    shutil.rmtree(session / "spill", ignore_errors=True)


def session_of(address: str) -> Path | None:
    """The session directory of a ``unix:`` head address, if it is one."""
    if not address.startswith("unix:"):
        return None
    sock = Path(address[len("unix:") :])
    return sock.parent.parent if sock.parent.name == "sockets" else None
