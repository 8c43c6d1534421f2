"""Session directories: private, complete, the newest one findable, short enough for socket paths."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actorlib._session import new_session, remove_sockets, session_of, sessions_root
from actorlib._wire import read_token
from actorlib._wire._address import MAX_UNIX_PATH


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ACTORLIB_TMPDIR; never the shared /tmp/actorlib-<uid> other runs use."""
    # Short on purpose: a long ACTORLIB_TMPDIR (tmp_path is) makes sessions_root()
    # fall back to /tmp/actorlib-<uid> to keep socket paths under 107 bytes.
    directory = Path(tempfile.mkdtemp(prefix="", dir="/tmp"))
    monkeypatch.setenv("ACTORLIB_TMPDIR", str(directory))
    try:
        if sessions_root().parent != directory:
            pytest.skip(f"{directory} is too long a path for this uid to keep sessions private")
        yield sessions_root()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_session_is_private_and_complete(root: Path) -> None:
    session = new_session()
    assert session.parent == root
    assert session.name.startswith("session_")
    assert mode(root) == 0o700
    assert mode(session) == 0o700
    assert mode(session / "token") == 0o600
    assert len(read_token(session / "token")) >= 32
    assert (session / "logs").is_dir()
    assert (session / "sockets").is_dir()


def test_sessions_are_distinct_with_distinct_tokens(root: Path) -> None:
    sessions = [new_session() for _ in range(5)]
    assert len(set(sessions)) == 5
    assert len({read_token(s / "token") for s in sessions}) == 5


def test_session_latest_points_at_the_newest(root: Path) -> None:
    first = new_session()
    assert (root / "session_latest").resolve() == first.resolve()
    second = new_session()
    latest = root / "session_latest"
    assert latest.is_symlink()
    assert os.readlink(latest) == second.name  # relative: the tree can be moved
    assert latest.resolve() == second.resolve()
    assert [p.name for p in root.iterdir() if p.name.startswith(".latest")] == []


def test_the_longest_socket_path_of_a_session_fits(root: Path) -> None:
    session = new_session()
    assert len(str(session / "sockets" / "store-0123456789ab.sock").encode()) <= MAX_UNIX_PATH


def test_a_tmpdir_too_long_for_socket_paths_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTORLIB_TMPDIR", "/tmp/" + "x" * 80)
    assert sessions_root() == Path(f"/tmp/actorlib-{os.getuid()}")


def test_session_of_a_head_socket_address(root: Path) -> None:
    session = new_session()
    assert session_of(f"unix:{session}/sockets/head.sock") == session


@pytest.mark.parametrize("address", ["127.0.0.1:6379", "unix:/run/head.sock", "unix:/a/b/head.sock"])
def test_session_of_other_addresses_is_none(address: str) -> None:
    assert session_of(address) is None


def test_remove_sockets_keeps_the_logs(root: Path) -> None:
    session = new_session()
    (session / "logs" / "head.out").write_text("hello")
    (session / "sockets" / "head.sock").touch()
    remove_sockets(session)
    assert not (session / "sockets").exists()
    assert (session / "logs" / "head.out").read_text() == "hello"
