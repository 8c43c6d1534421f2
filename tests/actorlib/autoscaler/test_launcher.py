"""`actorlib up|exec|attach|status|down` with examples/autoscaling.yaml (local provider), as a user runs them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from ..integration.conftest import processes_mentioning, wait_gone
from ..multinode.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "examples" / "autoscaling.yaml"


def actorlib_cli(*args: str, env: dict, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "actorlib", *args], capture_output=True, text=True, timeout=180, env=env, input=stdin,
        cwd=ROOT,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"actorlib {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def example_cluster():
    """The example config as written, on a free port and with its token in a temporary folder."""
    tmp = tempfile.mkdtemp(prefix="up-", dir="/tmp")
    data = yaml.safe_load(EXAMPLE.read_text())
    data.update(head_port=free_port(), token_file=f"{tmp}/token")
    config = Path(tmp) / "autoscaling.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "ACTORLIB_TMPDIR": tmp}
    try:
        yield config, env, data
    finally:
        actorlib_cli("down", str(config), "--yes", env=env, check=False)
        survivors = wait_gone(processes_mentioning(tmp), 15)
        assert not survivors, f"left running after `actorlib down`: {survivors}"
        shutil.rmtree(tmp, ignore_errors=True)


def test_up_exec_attach_status_down(example_cluster):
    config, env, data = example_cluster
    refused = actorlib_cli("up", str(config), env=env, stdin="n\n", check=False)
    assert refused.returncode == 1 and "Start it?" in refused.stdout  # asks first; "n" starts nothing

    started = actorlib_cli("up", str(config), "--yes", env=env)
    assert "Cluster 'autoscaling-example': local provider" in started.stdout
    assert "cpu_worker: CPU: 2, 1 to 3 nodes" in started.stdout
    assert "workers up: cpu_worker 1/1" in started.stdout  # progress while min_workers come up
    assert oct(Path(data["token_file"]).stat().st_mode & 0o777) == "0o600"

    again = actorlib_cli("up", str(config), "--yes", env=env)
    assert "is already running" in again.stdout

    ran = actorlib_cli("exec", str(config), f"{sys.executable} examples/autoscaling.py", env=env)
    assert "autoscaling ok" in ran.stdout
    failed = actorlib_cli("exec", str(config), "exit 3", env=env, check=False)
    assert failed.returncode == 3

    shell = actorlib_cli("attach", str(config), env=env, stdin="echo address=$ACTORLIB_ADDRESS\nactorlib status\n")
    assert f"address=127.0.0.1:{data['head_port']}" in shell.stdout
    assert "Autoscaler (local provider, cluster 'autoscaling-example'): workers" in shell.stdout

    down = actorlib_cli("down", str(config), "--yes", env=env)
    assert "stopped the head" in down.stdout and "Cluster 'autoscaling-example' is down." in down.stdout


def test_a_bad_config_is_refused_naming_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("    max_workers: 3", "    max_workers: lots"))
    result = actorlib_cli("up", str(bad), "--yes", env=dict(os.environ), check=False)
    assert result.returncode == 1
    assert "line 18: available_node_types.cpu_worker.max_workers: Expected int, got str" in result.stderr
