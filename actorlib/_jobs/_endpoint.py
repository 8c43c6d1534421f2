"""Where a jobs client sends its requests, and with which token: arguments, environment, local cluster."""

from __future__ import annotations

import os
from pathlib import Path

from .._environ import ADDRESS_ENV, TOKEN_ENV, TOKEN_FILE_ENV


def http_address(address: str | None) -> tuple[str, Path | None]:
    """(``http://host:port`` of the cluster's HTTP API, its session directory here if known).

    ``address``: ``http(s)://...``, ``host:port`` of the HTTP API, ``auto`` or None
    ($ACTORLIB_ADDRESS, else this driver's embedded cluster if it serves HTTP, else the
    newest running cluster of this user on this machine). A head's wire address (as
    $ACTORLIB_ADDRESS holds inside a job) is looked up in the running clusters.
    Raises ConnectionError saying what is missing.
    """
    given = address or os.environ.get(ADDRESS_ENV) or "auto"
    embedded = _embedded()
    if embedded is not None and (given == "auto" or _same(given, embedded[0])):
        return embedded
    if given.startswith(("http://", "https://")):
        url = given.rstrip("/")
        return url, _session_serving(url)
    from .._driver._discovery import running_sessions
    from .._wire import parts

    for session, info in running_sessions():
        dashboard = str(info.get("dashboard") or "")
        wire = parts(str(info.get("address", "")))
        if given == "auto" or given in wire or given == str(info.get("address")) or _same(f"http://{given}", dashboard):
            if not dashboard:
                raise ConnectionError(f"the actorlib cluster in {session} serves no HTTP API (it was started without one)")
            return dashboard, session
    if given == "auto" or given.startswith("unix:") or ";" in given:
        raise ConnectionError("no running actorlib cluster with an HTTP API found on this machine; pass --address http://HOST:PORT")
    return f"http://{given}", None


def token_for(session: Path | None, token: str | None = None, token_file: str | None = None) -> str | None:
    """The cluster token: given, $ACTORLIB_TOKEN, a token file, $ACTORLIB_TOKEN_FILE, or the session's."""
    if token:
        return token
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = token_file or os.environ.get(TOKEN_FILE_ENV)
    if path:
        return Path(path).read_text().strip()
    if session is not None and (session / "token").exists():
        return (session / "token").read_text().strip()
    return None


def _embedded() -> tuple[str, Path] | None:
    """(HTTP API, session) of the cluster this process started with init(include_dashboard=True)."""
    from .. import _core

    runtime = _core._runtime._current
    if runtime is None or runtime.closed or not runtime.identity.dashboard_url:
        return None
    return runtime.identity.dashboard_url, runtime.identity.session_dir


def _session_serving(url: str) -> Path | None:
    from .._driver._discovery import running_sessions

    for session, info in running_sessions():
        if _same(url, str(info.get("dashboard") or "")):
            return session
    return None


def _same(a: str, b: str) -> bool:
    def norm(url: str) -> str:
        return url.rstrip("/").replace("://localhost:", "://127.0.0.1:")

    return bool(a) and bool(b) and norm(a) == norm(b)
