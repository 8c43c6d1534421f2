"""Ray's own `ray job` CLI and JobSubmissionClient, unchanged, against an actorlib head.

The test makes its own venv with ``ray[default]`` (cached in ~/.cache/actorlib-tests, so
only the first run installs), and skips with the reason only if pip cannot install it.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from ..multinode.conftest import MultiNode
from .conftest import cluster_token, cluster_url

RAY = "ray[default]==2.60.0"
CACHE = Path(os.environ.get("ACTORLIB_TEST_CACHE", Path.home() / ".cache" / "actorlib-tests"))
VENV = CACHE / "ray-jobs-venv"
pytestmark = pytest.mark.slow


def ray_venv() -> Path:
    """The venv's bin directory, with Ray's job CLI installed (once; later runs reuse it)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "ray-jobs-venv.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test runs install once
        python = VENV / "bin" / "python"
        if python.exists() and _imports_ray(python):
            return VENV / "bin"
        venv.create(VENV, with_pip=True, clear=True)
        install = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", RAY], capture_output=True, text=True, timeout=1500
        )
        if install.returncode != 0 or not _imports_ray(python):
            pytest.skip(f"cannot install {RAY} with pip, so Ray's clients cannot be tested: {install.stderr.strip()[-500:]}")
    return VENV / "bin"


def _imports_ray(python: Path) -> bool:
    check = [str(python), "-c", "import ray.job_submission, aiohttp, pydantic"]
    return subprocess.run(check, capture_output=True, timeout=300).returncode == 0


@pytest.fixture(scope="module")
def ray_bin():
    return ray_venv()


@pytest.fixture(scope="module")
def cluster(ray_bin):
    multi = MultiNode([], head_cpus=2)
    multi.url = cluster_url(multi)
    try:
        yield multi
    finally:
        multi.stop()


def ray_env(cluster, **extra: str) -> dict[str, str]:
    """Ray's clients' environment: the token as RAY_JOB_HEADERS, none of our Python path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}
    env["RAY_JOB_HEADERS"] = json.dumps({"Authorization": f"Bearer {cluster_token(cluster)}"})
    env.update(extra)
    return env


def ray_job(ray_bin: Path, cluster, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    argv = [str(ray_bin / "ray"), "job", args[0], "--address", cluster.url, *args[1:]]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, env=env or ray_env(cluster))


def test_rays_job_cli_drives_every_endpoint(ray_bin, cluster, tmp_path):
    submitted = ray_job(ray_bin, cluster, "submit", "--submission-id", "ray-cli-1", "--", sys.executable, "-c", "print('hi from ray')")
    assert submitted.returncode == 0, submitted.stderr
    assert "hi from ray" in submitted.stdout and "ray-cli-1" in submitted.stdout
    status = ray_job(ray_bin, cluster, "status", "ray-cli-1")
    assert status.returncode == 0 and "Job 'ray-cli-1' succeeded" in status.stdout
    logs = ray_job(ray_bin, cluster, "logs", "ray-cli-1")
    assert "hi from ray" in logs.stdout

    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("WHO = 'package from the working_dir'\n")
    (project / "main.py").write_text("import os, pkg\nprint(pkg.WHO, os.environ['MY_VAR'])\n")
    env_json = json.dumps({"env_vars": {"MY_VAR": "set"}})
    no_wait = ray_job(ray_bin, cluster, "submit", "--no-wait", "--submission-id", "ray-cli-wd", "--working-dir", str(project),
                      "--runtime-env-json", env_json, "--", "python", "main.py")  # fmt: skip
    assert no_wait.returncode == 0, no_wait.stderr
    followed = ray_job(ray_bin, cluster, "logs", "--follow", "ray-cli-wd")
    assert followed.returncode == 0, followed.stderr
    assert "package from the working_dir set" in followed.stdout

    listed = ray_job(ray_bin, cluster, "list")
    assert listed.returncode == 0 and "ray-cli-1" in listed.stdout and "ray-cli-wd" in listed.stdout

    assert ray_job(ray_bin, cluster, "submit", "--no-wait", "--submission-id", "ray-sleep", "--", "sleep", "60").returncode == 0
    stopped = ray_job(ray_bin, cluster, "stop", "ray-sleep")
    assert stopped.returncode == 0, stopped.stderr
    assert "Job 'ray-sleep' was stopped" in ray_job(ray_bin, cluster, "status", "ray-sleep").stdout
    assert ray_job(ray_bin, cluster, "delete", "ray-sleep").returncode == 0
    assert ray_job(ray_bin, cluster, "status", "ray-sleep").returncode != 0

    no_token = ray_job(ray_bin, cluster, "list", env={k: v for k, v in ray_env(cluster).items() if k != "RAY_JOB_HEADERS"})
    assert no_token.returncode != 0


SDK_SCRIPT = """
import asyncio, json, sys, time
from ray.job_submission import JobSubmissionClient, JobStatus

url, token, project = sys.argv[1], sys.argv[2], sys.argv[3]
client = JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"})
out = {}
sid = client.submit_job(entrypoint="python main.py", submission_id="ray-sdk-1",
                        runtime_env={"working_dir": project, "env_vars": {"MY_VAR": "sdk"}}, metadata={"owner": "alice"})

async def tail():
    return "".join([chunk async for chunk in client.tail_job_logs(sid)])

out["tail"] = asyncio.run(tail())
out["status"] = str(client.get_job_status(sid))
info = client.get_job_info(sid)
out["info"] = {"metadata": info.metadata, "exit": info.driver_exit_code, "wd": info.runtime_env["working_dir"]}
out["logs"] = client.get_job_logs(sid)
again = client.submit_job(entrypoint="python main.py", runtime_env={"working_dir": project, "env_vars": {"MY_VAR": "again"}})
try:
    client.submit_job(entrypoint="true", submission_id="ray-sdk-1")
except RuntimeError as exc:
    out["duplicate"] = str(exc)
long = client.submit_job(entrypoint="sleep 60")
while client.get_job_status(long) != JobStatus.RUNNING:
    time.sleep(0.1)
out["stop"] = client.stop_job(long)
while not client.get_job_status(long).is_terminal():
    time.sleep(0.1)
out["stopped"] = str(client.get_job_status(long))
out["stop_again"] = client.stop_job(long)
out["listed"] = sorted(j.submission_id for j in client.list_jobs())
out["deleted"] = client.delete_job(long)
try:
    client.get_job_status(long)
except RuntimeError as exc:
    out["missing"] = str(exc)
print("OUT " + json.dumps(out))
"""


def test_rays_job_submission_client_works_unchanged(ray_bin, cluster, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "main.py").write_text("import os\nfor i in range(3):\n    print('line', i, os.environ['MY_VAR'], flush=True)\n")
    script = tmp_path / "sdk.py"
    script.write_text(textwrap.dedent(SDK_SCRIPT))
    before = _packages(cluster)
    run = subprocess.run([str(ray_bin / "python"), str(script), cluster.url, cluster_token(cluster), str(project)],
                         capture_output=True, text=True, timeout=300, env=ray_env(cluster))  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.split("OUT ", 1)[1])
    assert "line 0 sdk\nline 1 sdk\nline 2 sdk\n" in out["tail"]
    assert out["status"] == "SUCCEEDED" and out["info"]["exit"] == 0 and out["info"]["metadata"] == {"owner": "alice"}
    assert out["info"]["wd"].startswith("gcs://_ray_pkg_") and out["logs"].endswith("line 2 sdk\n")
    assert "already exists" in out["duplicate"] and "status code 400" in out["duplicate"]
    assert out["stop"] is True and out["stopped"] == "STOPPED" and out["stop_again"] is False
    assert "ray-sdk-1" in out["listed"] and out["deleted"] is True
    assert "404" in out["missing"] and "does not exist" in out["missing"]
    assert len(_packages(cluster) - before) == 1  # the same directory is the same package, stored once


def _packages(cluster) -> set[Path]:
    return set(Path(cluster.tmp).glob("actorlib-*/session_2*/packages/_ray_pkg_*.zip"))
