"""Unpacking packages safely, once per node, into a cache directory.

A package comes from a client: every member is checked before anything is
written (no absolute paths, no ``..``, no links or devices, bounded size),
and each file is created inside a fresh directory that is renamed into
place only when complete, so readers never see half a package.
"""

from __future__ import annotations

import fcntl
import io
import os
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ._fields import check_name

MAX_UNPACKED = 2**30  # bytes a package may expand to (zip bombs)
MAX_MEMBERS = 100_000


class UnsafePackage(ValueError):
    """A package that is not a zip, or has a member that could escape its directory."""


def check_zip(data: bytes | Path) -> None:
    """Raise UnsafePackage naming the first bad member of a zip (or saying it is not one)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as archive:
            _members(archive)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        if isinstance(exc, UnsafePackage):
            raise
        raise UnsafePackage(f"not a valid zip file: {exc}") from None


def _members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise UnsafePackage(f"the package has {len(infos)} members, more than {MAX_MEMBERS}")
    total = 0
    members = []
    seen: set[PurePosixPath] = set()
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if not path.parts or path in seen:
            raise UnsafePackage(f"member {name!r} is empty or appears twice")
        seen.add(path)
        if "\\" in name or "\0" in name or path.is_absolute() or ".." in path.parts or name.startswith("~"):
            raise UnsafePackage(f"member {name!r} would be written outside the package directory")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafePackage(f"member {name!r} is a symbolic link (not allowed in packages)")
        if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafePackage(f"member {name!r} is not a regular file or directory")
        total += info.file_size
        if total > MAX_UNPACKED:
            raise UnsafePackage(f"the package expands to more than {MAX_UNPACKED / 2**20:.0f} MiB")
        members.append((info, path))
    return members


def unpacked_path(cache: Path, name: str) -> Path:
    """Where package ``name`` is (or will be) unpacked in ``cache``."""
    check_name(name)
    return cache / name.removesuffix(".zip")


def ensure_unpacked(cache: Path, name: str, fetch: Callable[[], bytes | Path]) -> Path:
    """The directory of package ``name`` in ``cache``, unpacking it first if needed.

    Blocking. Processes of one node share the cache: a file lock makes one of
    them fetch (``fetch()`` returns the zip's bytes or path) and unpack; the
    others wait and reuse it. Raises UnsafePackage, or what ``fetch`` raises.
    """
    target = unpacked_path(cache, name)
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{name}.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_dir():
            return target
        staging = cache / f".{target.name}.{os.getpid()}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            _extract(fetch(), staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _extract(data: bytes | Path, dest: Path) -> None:
    dest.mkdir(mode=0o700)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)
    except zipfile.BadZipFile as exc:
        raise UnsafePackage(f"not a valid zip file: {exc}") from None
    with archive:
        for info, path in _members(archive):
            try:
                _write(archive, info, dest.joinpath(*path.parts))
            except OSError as exc:  # a file where a directory should be, and the like
                raise UnsafePackage(f"cannot unpack member {info.filename!r}: {exc}") from None
    dest.chmod(0o755)


def _write(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path) -> None:
    if info.is_dir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    executable = (info.external_attr >> 16) & 0o111
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    fd = os.open(target, flags, 0o755 if executable else 0o644)
    with os.fdopen(fd, "wb") as out, archive.open(info) as source:
        shutil.copyfileobj(source, out)
