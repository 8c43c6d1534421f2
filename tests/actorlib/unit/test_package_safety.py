"""Uploaded packages cannot write outside their directory, whatever their members are called.

Hypothesis builds zips from hostile member names (``..``, absolute paths, backslashes, ``~``, NUL,
empty parts) and kinds (files, directories, symbolic links, FIFOs, executables) and unpacks each
into a sandbox: either the package is refused (and nothing is left behind), or every path it
created is inside its own directory, none is a link, and every file holds what the zip said.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
import warnings
import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._runtime_env import UnsafePackage, check_zip, ensure_unpacked

from ...fuzzcount import count

NAME = "_ray_pkg_0123456789abcdef.zip"
KINDS = {
    "file": 0o100644,
    "executable": 0o100755,
    "directory": 0o040755,
    "symlink": 0o120777,
    "fifo": 0o010644,
    "no mode": 0,
}
PARTS = st.sampled_from(["a", "b", "c.py", ".", "..", "", "~", "~x", " ", "a\\..\\..", "C:", "\x00", "é"])
NAMES = st.one_of(
    st.lists(PARTS, min_size=1, max_size=5).map("/".join),
    st.sampled_from(["../escape", "/etc/evil", "a/../../escape", "./a", "a//b", "~/x", "..\\escape", "a/", "//x",
                     "a/./b", "a/b/../../../x"]),
)  # fmt: skip
MEMBERS = st.lists(st.tuples(NAMES, st.sampled_from(sorted(KINDS)), st.binary(max_size=8)), min_size=1, max_size=6)


def zip_of(members: list[tuple[str, str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        for name, kind, data in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = KINDS[kind] << 16
            archive.writestr(info, b"/etc/passwd" if kind == "symlink" else data)
    return buffer.getvalue()


def tree(root: Path) -> set[Path]:
    return {Path(dirpath) / name for dirpath, dirs, files in os.walk(root) for name in dirs + files}


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(members=MEMBERS)
def test_a_package_never_writes_outside_its_directory(members: list[tuple[str, str, bytes]]) -> None:
    data = zip_of(members)
    sandbox = Path(tempfile.mkdtemp(prefix="pkg-"))
    try:
        cache = sandbox / "deep" / "cache"
        cache.mkdir(parents=True)
        (sandbox / "escape").mkdir()  # where a ../ would land
        before = tree(sandbox)
        try:
            check_zip(data)
            checked = True
        except UnsafePackage:
            checked = False
        try:
            target = ensure_unpacked(cache, NAME, lambda: data)
        except UnsafePackage:
            count("package unpacking", "refused")
            created = tree(sandbox) - before
            assert created <= {cache / f".{NAME}.lock"}, created  # nothing half-written stays
            return
        count("package unpacking", "unpacked")
        assert checked, "unpacked what check_zip refuses"
        created = tree(sandbox) - before - {cache / f".{NAME}.lock"}
        assert all(path == target or target in path.parents for path in created), created
        assert not any(path.is_symlink() for path in created)
        for path in created:
            assert stat.S_ISDIR(path.lstat().st_mode) or stat.S_ISREG(path.lstat().st_mode), path
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    assert (target / info.filename).read_bytes() == archive.read(info)
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
