"""Client side: a local directory becomes a zip named by a hash of its content (pure file I/O).

Files matching ``excludes`` (gitignore-like patterns: ``*.log``, ``data/``,
``/build``) are left out, as are ``.git`` and ``__pycache__`` directories.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import zipfile
from pathlib import Path, PurePosixPath

DEFAULT_MAX_SIZE = 100 * 2**20  # bytes of zip, per package (Ray's limit for working_dir uploads)
ALWAYS_EXCLUDED = (".git", "__pycache__")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same content zips to the same bytes


class PackageTooLarge(ValueError):
    """A directory zips to more than the package size limit."""


def zip_directory(
    path: str | os.PathLike[str], *, excludes: list[str] = (), include_parent: bool = False, max_size: int = DEFAULT_MAX_SIZE  # type: ignore[assignment]
) -> tuple[str, bytes]:
    """Zip the directory at ``path``; return (``_ray_pkg_<hash>.zip``, the zip's bytes).

    Members are relative to the directory (``include_parent``: to its parent,
    so the directory itself is the top level, as ``py_modules`` needs). The
    same files always give the same name. Raises NotADirectoryError,
    PackageTooLarge (naming the size and the limit).
    """
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise NotADirectoryError(f"{path!r} is not a directory")
    prefix = PurePosixPath(root.name) if include_parent else PurePosixPath()
    files = sorted(_walk(root, list(excludes)))
    digest = hashlib.sha256(str(prefix).encode())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for relative in files:
            source = root / relative
            data = source.read_bytes()
            member = str(prefix / relative)
            info = zipfile.ZipInfo(member, _EPOCH)
            info.external_attr = (0o100755 if os.access(source, os.X_OK) else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
            digest.update(member.encode() + b"\0" + hashlib.sha256(data).digest())
            if buffer.tell() > max_size:
                break
    if buffer.tell() > max_size:
        raise PackageTooLarge(
            f"{path!r} zips to more than {max_size / 2**20:.1f} MiB, the package size limit; "
            "leave large files out with runtime_env['excludes'] or store them elsewhere"
        )
    return f"_ray_pkg_{digest.hexdigest()[:16]}.zip", buffer.getvalue()


def _walk(root: Path, excludes: list[str]) -> list[PurePosixPath]:
    found = []
    for folder, dirs, names in os.walk(root):
        here = PurePosixPath(Path(folder).relative_to(root).as_posix())
        dirs[:] = [d for d in dirs if d not in ALWAYS_EXCLUDED and not excluded(here / d, excludes, is_dir=True)]
        for name in names:
            relative = here / name
            source = Path(folder) / name
            if source.is_file() and not excluded(relative, excludes, is_dir=False):
                found.append(relative)
    return found


def excluded(relative: PurePosixPath, patterns: list[str], *, is_dir: bool) -> bool:
    """Whether a path (relative to the directory being zipped) matches one of ``patterns``.

    A pattern with a leading ``/`` or an inner ``/`` matches from the root; one
    without matches the name at any depth; a trailing ``/`` matches directories only.
    """
    text = relative.as_posix()
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or pattern.startswith("#"):
            continue
        dir_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        if dir_only and not is_dir:
            continue
        if "/" in pattern:
            if fnmatch.fnmatchcase(text, pattern.lstrip("/")):
                return True
        elif fnmatch.fnmatchcase(relative.name, pattern):
            return True
    return False
