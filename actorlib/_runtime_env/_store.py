"""The head's packages: uploaded zips kept in its session directory, by name."""

from __future__ import annotations

import os
from pathlib import Path

from ._fields import check_name


class PackageStore:
    """Packages on disk under ``root`` (``<session>/packages``); names are checked first."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        """The file of package ``name``. Raises RuntimeEnvError for a bad name."""
        check_name(name)
        return self.root / name

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def read(self, name: str) -> bytes:
        """The package's bytes. Raises FileNotFoundError if it was never uploaded."""
        return self.path(name).read_bytes()

    def put(self, name: str, data: bytes) -> None:
        """Store a package (atomically: readers see all of it or none). Idempotent."""
        path = self.path(name)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.{id(data)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
