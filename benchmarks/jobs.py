"""Jobs: an actorlib head against a Ray head, in one run: ``python -m benchmarks.jobs``.

Two figures per system, each the median of ``--repeat`` samples:

- **submit to RUNNING**: ``POST /api/jobs/`` of ``sleep 30``, then ``GET /api/jobs/{id}``
  every 5 ms until it says RUNNING (the same HTTP client and calls for both heads; the
  job is then stopped and waited for).
- **ray job submit**: wall time of Ray's own CLI, ``ray job submit --address URL --
  python -c "print(1)"``, until it exits (it follows the logs to the end), from spawning it.

Both heads run on this machine with 2 CPUs, token authentication on, loopback only. Ray's
job CLI needs ``ray[default]``: ``--ray-bin`` is the ``bin`` directory of a venv that has it
(default: the one the test suite caches, ~/.cache/actorlib-tests/ray-jobs-venv/bin).
Every process either system started is killed by pid at the end (this process is a subreaper).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .cluster_child import become_subreaper, kill_everything_left, live_descendants, reaping, signal_all, wait_none_left

DEFAULT_RAY_BIN = Path.home() / ".cache" / "actorlib-tests" / "ray-jobs-venv" / "bin"
POLL_S = 0.005
TRIVIAL = [sys.executable, "-c", "print(1)"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Head:
    """A running head: its HTTP API, the headers that authenticate, the env for Ray's CLI."""

    url: str
    headers: dict[str, str]
    cli_env: dict[str, str]

    def stop(self) -> None:
        signal_all(live_descendants(), signal.SIGTERM)
        if wait_none_left(15):
            kill_everything_left()


class ActorlibHead(Head):
    def __init__(self, tmp: str) -> None:
        env = {**os.environ, "ACTORLIB_TMPDIR": tmp}
        argv = [sys.executable, "-m", "actorlib", "start", "--head", "--port", str(free_port()), "--num-cpus", "2",
                "--dashboard-port", str(free_port())]  # fmt: skip
        subprocess.run(argv, env=env, check=True, capture_output=True, timeout=120)
        (ready,) = Path(tmp).glob("actorlib-*/session_2*/head.json")
        self.url = json.loads(ready.read_text())["dashboard"]
        token = (ready.parent / "token").read_text().strip()
        self.headers = {"Authorization": f"Bearer {token}"}
        self.cli_env = {"RAY_JOB_HEADERS": json.dumps(self.headers)}


class RayHead(Head):
    def __init__(self, tmp: str, ray_bin: Path) -> None:
        token = secrets.token_hex(32)
        self.cli_env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0",
                        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # fmt: skip
        port = free_port()
        argv = [str(ray_bin / "ray"), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(free_port()),
                "--num-cpus", "2", "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                "--dashboard-port", str(port), "--disable-usage-stats", "--temp-dir", os.path.join(tmp, "ray")]  # fmt: skip
        subprocess.run(argv, env=_ray_env(self.cli_env), check=True, capture_output=True, timeout=180)
        self.url = f"http://127.0.0.1:{port}"
        self.headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 60
        while not _answers(self.url, self.headers):  # the dashboard comes up after `ray start` returns
            if time.monotonic() > deadline:
                raise TimeoutError(f"Ray's dashboard did not answer at {self.url}")
            time.sleep(0.2)


def _ray_env(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RAY_ADDRESS")}, **extra}


def _answers(url: str, headers: dict[str, str]) -> bool:
    try:
        return httpx.get(f"{url}/api/version", headers=headers, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def submit_to_running(head: Head) -> float:
    with httpx.Client(base_url=head.url, headers=head.headers, timeout=30) as client:
        t0 = time.perf_counter()
        sid = client.post("/api/jobs/", json={"entrypoint": "sleep 30", "runtime_env": {}, "metadata": {}}).json()["submission_id"]
        while (status := client.get(f"/api/jobs/{sid}").json()["status"]) == "PENDING":
            time.sleep(POLL_S)
        elapsed = time.perf_counter() - t0
        if status != "RUNNING":
            raise RuntimeError(f"job {sid} went {status}: {client.get(f'/api/jobs/{sid}/logs').text[-500:]}")
        client.post(f"/api/jobs/{sid}/stop")
        while client.get(f"/api/jobs/{sid}").json()["status"] not in ("STOPPED", "FAILED", "SUCCEEDED"):
            time.sleep(0.05)
        return elapsed


def ray_cli_submit(head: Head, ray_bin: Path) -> float:
    argv = [str(ray_bin / "ray"), "job", "submit", "--address", head.url, "--", *TRIVIAL]
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=_ray_env(head.cli_env), capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0 or "succeeded" not in done.stdout:
        raise RuntimeError(f"ray job submit failed ({done.returncode}): {done.stdout[-500:]}{done.stderr[-1500:]}")
    return elapsed


def measure(name: str, start: Callable[[], Head], ray_bin: Path, repeat: int) -> dict[str, Any]:
    print(f"{name}: starting the head", file=sys.stderr)
    head = start()
    try:
        ray_cli_submit(head, ray_bin)  # warm-up: first imports, first worker
        running = [submit_to_running(head) for _ in range(repeat)]
        cli = [ray_cli_submit(head, ray_bin) for _ in range(repeat)]
    finally:
        head.stop()
    return {"submit_to_running_s": running, "ray_job_submit_s": cli}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ray-bin", type=Path, default=DEFAULT_RAY_BIN, help="bin/ of a venv with ray[default]")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the samples here")
    args = parser.parse_args(argv)
    if not (args.ray_bin / "ray").exists():
        parser.error(f"no ray CLI in {args.ray_bin}: pip install 'ray[default]' into a venv and pass --ray-bin")
    become_subreaper()
    tmp = tempfile.mkdtemp(prefix="bj-", dir="/tmp")
    started = time.time()
    try:
        with reaping():
            results = {
                "actorlib": measure("actorlib", lambda: ActorlibHead(tmp), args.ray_bin, args.repeat),
                "ray": measure("ray", lambda: RayHead(tmp, args.ray_bin), args.ray_bin, args.repeat),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(report(results, args.repeat, time.time() - started))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


def report(results: dict[str, dict[str, list[float]]], repeat: int, duration: float) -> str:
    """The table: medians in ms and Ray / actorlib (how many times faster actorlib is)."""
    lines = [f"Jobs: medians of {repeat} samples (ms); 'x faster' = Ray / actorlib", "",
             f"{'figure':<34}{'actorlib':>10}{'ray':>10}{'x faster':>10}"]  # fmt: skip
    for key, label in (("submit_to_running_s", "submit to RUNNING (HTTP)"), ("ray_job_submit_s", 'ray job submit python -c "print(1)"')):
        ours, theirs = statistics.median(results["actorlib"][key]), statistics.median(results["ray"][key])
        lines.append(f"{label:<34}{ours * 1000:>10.0f}{theirs * 1000:>10.0f}{theirs / ours:>10.1f}")
    lines += ["", f"run time {duration:.0f} s"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
