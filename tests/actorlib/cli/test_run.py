"""``actorlib run``: a script against an embedded cluster, its exit status, and nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import actorlib

from ..integration.conftest import Cluster, wait_gone

ROOT = Path(__file__).resolve().parents[3]

REPORT = """
import json, os, sys
import actorlib
actorlib.init()

@actorlib.remote
def pid():
    return os.getpid()

print(json.dumps({
    "args": sys.argv[1:],
    "head": actorlib.nodes()[0]["pid"],
    "worker": actorlib.get(pid.remote()),
    "node": actorlib.get_runtime_context().get_node_id(),
}))
sys.exit(int(os.environ.get("EXIT_WITH", "0")))
"""


def actorlib_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actorlib", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )


def script(tmp_path: Path, code: str) -> str:
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(code))
    return str(path)


def test_quickstart_runs_through_the_console_script():
    command = Path(sys.executable).parent / "actorlib"
    result = subprocess.run([str(command), "run", "examples/quickstart.py"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[0, 1, 4, 9]"


def test_arguments_exit_status_and_teardown(tmp_path):
    result = actorlib_run(script(tmp_path, REPORT), "one", "--two", env={"EXIT_WITH": "3"})
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["args"] == ["one", "--two"]
    assert wait_gone([report["head"], report["worker"]], 5) == []


def test_a_script_connecting_to_auto_gets_the_embedded_cluster(tmp_path):
    # Ray's scripts say init(address="auto"); under `actorlib run` that is the cluster it started,
    # not "no running cluster" (none is running in this fresh directory).
    code = REPORT.replace("actorlib.init()", 'actorlib.init(address="auto")')
    result = actorlib_run(script(tmp_path, code), env={"ACTORLIB_TMPDIR": str(tmp_path / "sessions")})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert wait_gone([report["head"], report["worker"]], 5) == []


def test_a_failing_script_fails_the_command(tmp_path):
    result = actorlib_run(script(tmp_path, "raise SystemExit('nope')\n"))
    assert result.returncode == 1
    assert "nope" in result.stderr


def test_run_against_an_existing_cluster(tmp_path):
    cluster = Cluster(num_cpus=1)
    try:
        address = cluster.context.address_info["address"]
        result = actorlib_run("--address", address, script(tmp_path, REPORT))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout.splitlines()[-1])
        assert report["node"] == actorlib.get_runtime_context().get_node_id()
    finally:
        cluster.shutdown()


def test_missing_script_is_a_usage_error():
    result = actorlib_run("does-not-exist.py")
    assert result.returncode == 2
    assert "does-not-exist.py" in result.stderr
