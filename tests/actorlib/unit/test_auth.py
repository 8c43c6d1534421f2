"""Handshake proofs and the token file."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._wire import _auth
from actorlib._wire._auth import check, check_token, client_proof, new_token, nonce, read_token, server_proof, write_token

tokens = st.text(min_size=1, max_size=64)
nonces = st.binary(min_size=_auth.NONCE_LEN, max_size=_auth.NONCE_LEN)


@given(tokens, nonces)
@settings(max_examples=50, deadline=None)
def test_the_right_token_verifies(token: str, challenge: bytes) -> None:
    assert check(client_proof(token, challenge), client_proof(token, challenge))
    assert check(server_proof(token, challenge), server_proof(token, challenge))


@given(tokens, tokens, nonces)
@settings(max_examples=50, deadline=None)
def test_a_wrong_token_does_not_verify(token: str, other: str, challenge: bytes) -> None:
    if token == other:
        return
    assert not check(client_proof(token, challenge), client_proof(other, challenge))
    assert not check(server_proof(token, challenge), server_proof(other, challenge))


@given(tokens, nonces, nonces)
@settings(max_examples=50, deadline=None)
def test_a_proof_over_another_nonce_does_not_verify(token: str, challenge: bytes, other: bytes) -> None:
    if challenge == other:
        return
    assert not check(client_proof(token, challenge), client_proof(token, other))
    assert not check(server_proof(token, challenge), server_proof(token, other))


@given(tokens, nonces)
@settings(max_examples=50, deadline=None)
def test_client_and_server_proofs_differ_for_the_same_nonce(token: str, challenge: bytes) -> None:
    # Otherwise a server could replay the client's own proof back as its Welcome.
    assert not check(client_proof(token, challenge), server_proof(token, challenge))


def test_nonces_and_tokens_are_fresh() -> None:
    assert len({nonce() for _ in range(100)}) == 100
    assert all(len(nonce()) == _auth.NONCE_LEN for _ in range(10))
    assert len({new_token() for _ in range(100)}) == 100


def test_write_token_creates_a_file_only_its_owner_can_read(tmp_path: Path) -> None:
    path = tmp_path / "token"
    token = new_token()
    write_token(path, token)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_token(path) == token


def test_write_token_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "token"
    write_token(path, "first")
    with pytest.raises(FileExistsError):
        write_token(path, "second")
    assert read_token(path) == "first"


def test_write_token_does_not_follow_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    (tmp_path / "token").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_token(tmp_path / "token", "secret")
    assert not target.exists()


def test_read_token_strips_a_trailing_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("abc\n")
    assert read_token(path) == "abc"


def test_a_head_serves_only_a_token_too_long_to_guess() -> None:
    token = new_token()
    assert check_token(token, "here") == token and len(token) == 64
    assert check_token("k" * 32, "here") == "k" * 32
    for weak in ("", "secret", "k" * 31):
        with pytest.raises(ValueError, match=rf"the cluster token in here is {len(weak)} characters; a head needs at least 32"):
            check_token(weak, "here")


def test_adopting_a_short_token_raises_and_leaves_the_session_alone(tmp_path: Path) -> None:
    from actorlib.cluster import adopt_token

    (tmp_path / "weak").write_text("password\n")
    write_token(tmp_path / "token", "the-session-s-own-token")
    with pytest.raises(ValueError, match="is 8 characters; a head needs at least 32"):
        adopt_token(tmp_path, tmp_path / "weak")
    assert read_token(tmp_path / "token") == "the-session-s-own-token"
