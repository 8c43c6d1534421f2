"""runtime_env checks, packaging and safe unpacking (no cluster)."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import pytest

from actorlib._runtime_env import (
    PY_MODULES_ENV,
    WORKING_DIR_ENV,
    PackageTooLarge,
    RuntimeEnvError,
    UnsafePackage,
    check_runtime_env,
    check_zip,
    ensure_unpacked,
    env_of,
    package_name,
    uris_of,
    zip_directory,
)
from actorlib._runtime_env._packaging import excluded


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize(
    "runtime_env,error,match",
    [
        ("x", TypeError, "must be a dict"),
        ({"pip": ["numpy"]}, RuntimeEnvError, "'pip' is not supported"),
        ({"container": {}}, RuntimeEnvError, "'container'"),
        ({"uv": ["x"]}, RuntimeEnvError, "'uv'"),
        ({"env_vars": {"A": 1}}, TypeError, "env_vars"),
        ({"working_dir": 3}, TypeError, "working_dir"),
        ({"working_dir": "s3://bucket/x.zip"}, RuntimeEnvError, "unsupported package URI"),
        ({"working_dir": "gcs://../x.zip"}, RuntimeEnvError, "invalid package name"),
        ({"py_modules": "mod"}, TypeError, "py_modules"),
        ({"excludes": "*.log"}, TypeError, "excludes"),
    ],
)
def test_bad_runtime_envs_name_the_field(runtime_env, error, match) -> None:
    with pytest.raises(error, match=match):
        check_runtime_env(runtime_env, where="test")


def test_uris_only_refuses_local_paths() -> None:
    assert check_runtime_env({"working_dir": "."}, where="t") == {"working_dir": "."}
    with pytest.raises(RuntimeEnvError, match="must be a package URI"):
        check_runtime_env({"working_dir": "."}, where="t", uris_only=True)


def test_packages_travel_in_the_environment() -> None:
    env = env_of({"env_vars": {"A": "1"}, "working_dir": "gcs://_ray_pkg_a.zip", "py_modules": ["gcs://_ray_pkg_b.zip", "gcs://_ray_pkg_c.zip"]})
    assert env == {"A": "1", WORKING_DIR_ENV: "gcs://_ray_pkg_a.zip", PY_MODULES_ENV: "gcs://_ray_pkg_b.zip,gcs://_ray_pkg_c.zip"}
    assert uris_of(env) == ("gcs://_ray_pkg_a.zip", ["gcs://_ray_pkg_b.zip", "gcs://_ray_pkg_c.zip"])
    assert uris_of({}) == (None, [])
    assert package_name("gcs://_ray_pkg_a.zip") == "_ray_pkg_a.zip"


def test_the_same_files_zip_to_the_same_name_and_excludes_are_left_out(tmp_path: Path) -> None:
    project = tree(tmp_path / "p", {"main.py": "print(1)", "data/big.bin": "x", "logs/a.log": "l", "sub/keep.py": "k",
                                     "sub/x.log": "l", ".git/HEAD": "ref", "__pycache__/m.pyc": "c"})  # fmt: skip
    name, data = zip_directory(project, excludes=["data/", "*.log"])
    again, _ = zip_directory(project, excludes=["data/", "*.log"])
    assert name == again and name.startswith("_ray_pkg_") and name.endswith(".zip")
    assert sorted(zipfile.ZipFile(io.BytesIO(data)).namelist()) == ["main.py", "sub/keep.py"]
    (project / "main.py").write_text("print(2)")
    assert zip_directory(project, excludes=["data/", "*.log"])[0] != name


def test_a_py_module_keeps_its_directory_name(tmp_path: Path) -> None:
    module = tree(tmp_path / "mymod", {"__init__.py": "X = 1"})
    _, data = zip_directory(module, include_parent=True)
    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["mymod/__init__.py"]


def test_exclude_patterns() -> None:
    from pathlib import PurePosixPath as P

    assert excluded(P("a/b.log"), ["*.log"], is_dir=False)
    assert excluded(P("data"), ["data/"], is_dir=True) and not excluded(P("data"), ["data/"], is_dir=False)
    assert excluded(P("build"), ["/build"], is_dir=True) and not excluded(P("src/build"), ["/build"], is_dir=True)
    assert excluded(P("src/gen/x.py"), ["src/gen/*"], is_dir=False)
    assert not excluded(P("a.py"), ["# comment", ""], is_dir=False)


def test_a_directory_over_the_limit_is_refused_clearly(tmp_path: Path) -> None:
    project = tree(tmp_path / "p", {"big.bin": os.urandom(4096).hex()})
    with pytest.raises(PackageTooLarge, match="package size limit"):
        zip_directory(project, max_size=1024)
    with pytest.raises(NotADirectoryError):
        zip_directory(tmp_path / "missing")


def _zip(members: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (modes or {}).get(name, 0o100644) << 16
            archive.writestr(info, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "members,modes,match",
    [
        ({"../x": b""}, None, "outside"),
        ({"/abs": b""}, None, "outside"),
        ({"a\\..\\..\\x": b""}, None, "outside"),
        ({"link": b"/etc/passwd"}, {"link": 0o120777}, "symbolic link"),
        ({"fifo": b""}, {"fifo": 0o010644}, "not a regular file"),
    ],
)
def test_hostile_members_are_refused(members, modes, match) -> None:
    with pytest.raises(UnsafePackage, match=match):
        check_zip(_zip(members, modes))


def test_unpacking_happens_once_and_lands_inside_the_cache(tmp_path: Path) -> None:
    data = _zip({"a.py": b"A = 1", "pkg/__init__.py": b"", "run.sh": b"#!/bin/sh"}, {"run.sh": 0o100755})
    fetches = []

    def fetch() -> bytes:
        fetches.append(1)
        return data

    threads = [threading.Thread(target=ensure_unpacked, args=(tmp_path, "_ray_pkg_abc.zip", fetch)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = ensure_unpacked(tmp_path, "_ray_pkg_abc.zip", fetch)
    assert fetches == [1] and target == tmp_path / "_ray_pkg_abc"
    assert (target / "a.py").read_text() == "A = 1" and os.access(target / "run.sh", os.X_OK)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["_ray_pkg_abc"]


def test_a_hostile_package_leaves_nothing_behind(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(UnsafePackage):
        ensure_unpacked(cache, "_ray_pkg_bad.zip", lambda: _zip({"ok.py": b"", "../../escape": b"x"}))
    assert not (tmp_path / "escape").exists() and not (cache / "_ray_pkg_bad").exists()
    assert [p for p in cache.iterdir() if not p.name.endswith(".lock")] == []
