"""The cluster token and the mutual HMAC proof exchanged in every handshake (sans-I/O)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from ._errors import ConnectionFailed

TOKEN_ENV = "ACTORLIB_TOKEN"
NONCE_LEN = 32


class AuthenticationError(ConnectionFailed):
    """A peer could not prove it holds the cluster token (or refused ours)."""


def new_token() -> str:
    """A fresh random cluster token (hex)."""
    return secrets.token_hex(32)


def write_token(path: Path, token: str) -> None:
    """Store ``token`` at ``path``, readable by this user only (0600), created atomically."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)


def read_token(path: Path) -> str:
    return path.read_text().strip()


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
