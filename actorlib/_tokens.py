"""The cluster token's file (standard library only: the driver creates a session before
its own imports, so that starting the head overlaps them)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


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
