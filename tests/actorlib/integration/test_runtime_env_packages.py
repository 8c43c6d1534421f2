"""runtime_env working_dir and py_modules for init(), tasks and actors of an embedded cluster; its HTTP API on request."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

import actorlib


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@actorlib.remote
def where_and_what():
    import helper

    return os.getcwd(), helper.NAME, os.path.exists("notes.txt")


def test_init_working_dir_and_py_modules_reach_tasks_and_actors(fresh_cluster, tmp_path):
    project = write(tmp_path / "project", {"helper.py": "NAME = 'job helper'", "notes.txt": "x", "big.log": "l"})
    module = write(tmp_path / "shared_mod", {"__init__.py": "def hello():\n    return 'from py_modules'\n"})
    fresh_cluster(num_cpus=1, runtime_env={"working_dir": str(project), "py_modules": [str(module)], "excludes": ["*.log"]})
    cwd, name, notes = actorlib.get(where_and_what.remote())
    assert name == "job helper" and notes and Path(cwd).name.startswith("_ray_pkg_")
    assert not (Path(cwd) / "big.log").exists()
    assert os.getcwd() != cwd  # the driver itself stays where it is, as in Ray

    @actorlib.remote
    class Reader:
        def read(self):
            import helper
            import shared_mod

            return helper.NAME, shared_mod.hello(), os.getcwd()

    assert actorlib.get(Reader.remote().read.remote()) == ("job helper", "from py_modules", cwd)

    other = write(tmp_path / "other", {"helper.py": "NAME = 'task helper'", "notes.txt": "y"})
    task_cwd, task_name, _ = actorlib.get(where_and_what.options(runtime_env={"working_dir": str(other)}).remote())
    assert task_name == "task helper" and task_cwd != cwd


def test_a_bad_working_dir_is_a_clear_error(fresh_cluster, tmp_path):
    fresh_cluster(num_cpus=1)
    with pytest.raises(ValueError, match="is not a directory"):
        where_and_what.options(runtime_env={"working_dir": str(tmp_path / "missing")}).remote()
    with pytest.raises(ValueError, match="'conda' is not supported"):
        where_and_what.options(runtime_env={"conda": "env"})


def test_an_embedded_cluster_serves_http_only_when_asked(fresh_cluster):
    cluster = fresh_cluster(num_cpus=1)
    assert cluster.context.dashboard_url is None
    cluster.shutdown()
    cluster = fresh_cluster(num_cpus=1, include_dashboard=True, dashboard_port=0)
    url = cluster.context.dashboard_url
    assert url and url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{url}/api/version").status_code == 401
    token = (Path(cluster.context["session_dir"]) / "token").read_text()
    version = httpx.get(f"{url}/api/version", headers={"Authorization": f"Bearer {token}"})
    assert version.status_code == 200 and version.json()["version"] == "4"
