"""The cluster token and the mutual HMAC proof exchanged in every handshake (sans-I/O)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from .._tokens import new_token, read_token, write_token
from ._errors import ConnectionFailed

__all__ = ["new_token", "read_token", "write_token"]  # re-exported: the token file lives in actorlib._tokens

TOKEN_ENV = "ACTORLIB_TOKEN"
NONCE_LEN = 32
MIN_TOKEN_CHARS = 32  # a token a head will serve: new_token() makes 64


class AuthenticationError(ConnectionFailed):
    """A peer could not prove it holds the cluster token (or refused ours)."""


def check_token(token: str, source: str) -> str:
    """``token`` if a head may serve it; else ValueError naming ``source``. An empty or short
    token (an empty Secret, a typed password) would let anyone who guesses it run code."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(
            f"the cluster token in {source} is {len(token)} characters; a head needs at least {MIN_TOKEN_CHARS} "
            "random ones (make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return token


def nonce() -> bytes:
    return secrets.token_bytes(NONCE_LEN)


def client_proof(token: str, server_nonce: bytes) -> bytes:
    return _mac(token, b"actorlib-client\x00" + server_nonce)


def server_proof(token: str, client_nonce: bytes) -> bytes:
    return _mac(token, b"actorlib-server\x00" + client_nonce)


def check(expected: bytes, given: bytes) -> bool:
    return hmac.compare_digest(expected, given)


def _mac(token: str, message: bytes) -> bytes:
    return hmac.new(token.encode(), message, hashlib.sha256).digest()
