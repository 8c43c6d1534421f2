"""Finding a running cluster: ``address="auto"``, ``HOST:PORT``, ``unix:...``, and its token."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import msgspec


from .._session import SESSION_PREFIX, session_of, sessions_root
from .._titles import is_actorlib_title
from .._wire import parts, read_token

from .._environ import TOKEN_ENV, TOKEN_FILE_ENV


@dataclass(frozen=True)
class Found:
    head: str  # the head's address (a list: Unix socket first when on this machine)
    token: str
    session: Path | None  # the cluster's session directory on this machine, if it has one


def running_sessions(kind: str = "head.json") -> list[tuple[Path, dict[str, object]]]:
    """This user's sessions on this machine whose head (or node) process is alive, newest first."""
    root = sessions_root()
    found = []
    for session in sorted(root.glob(f"{SESSION_PREFIX}*"), reverse=True):
        if session.is_symlink():
            continue  # session_latest: a session listed under its own name too, and the next head moves it
        info = _ready_info(session / kind)
        if info is not None:
            found.append((session, info))
    return found


def _ready_info(path: Path) -> dict[str, object] | None:
    try:
        info = msgspec.json.decode(path.read_bytes())
    except (OSError, ValueError):
        return None
    pid = info.get("pid")
    if not isinstance(pid, int) or not _is_ours(pid):
        return None
    return info


def _is_ours(pid: int) -> bool:
    """Whether ``pid`` is a live actorlib head or node process of this user."""
    import psutil  # only drivers that look for a cluster need it: every process imports this module

    try:
        process = psutil.Process(pid)
        return process.uids().real == os.getuid() and is_actorlib_title(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def find(address: str) -> Found:
    """Resolve an ``init(address=...)`` to the head's address and the cluster token.

    Raises ConnectionError naming what is missing.
    """
    if address == "auto":
        sessions = running_sessions()
        if not sessions:
            raise ConnectionError(f"no running actorlib cluster of this user on this machine (looked in {sessions_root()})")
        session, info = sessions[0]
        return Found(str(info["address"]), _token(session), session)
    session = session_of(address)
    if session is not None:
        return Found(address, _token(session), session)
    for session, info in running_sessions():
        if address in parts(str(info["address"])):
            return Found(str(info["address"]), _token(session), session)
    return Found(address, _token(None), None)


def _token(session: Path | None) -> str:
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    if os.environ.get(TOKEN_FILE_ENV):
        return read_token(Path(os.environ[TOKEN_FILE_ENV]))
    if session is not None and (session / "token").exists():
        return read_token(session / "token")
    raise ConnectionError(f"no cluster token: set {TOKEN_ENV} or {TOKEN_FILE_ENV} (the head's session has a token file)")
