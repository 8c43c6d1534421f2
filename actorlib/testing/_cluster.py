"""A cluster of real processes on this machine's loopback addresses, for tests and benchmarks.

A head on 127.0.0.1 and worker nodes on 127.0.0.2, 127.0.0.3, ..., each started
with ``actorlib start`` as it would be on separate machines, all in a temporary
directory of their own (``ACTORLIB_TMPDIR``), on free ports. ``shutdown()`` runs
``actorlib stop`` and says which of its processes, if any, outlived it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from .._session import sessions_root

CLI_TIMEOUT = 120.0


class Cluster:
    """A head (and ``add_node()`` nodes) started with the CLI; a context manager that stops it.

    ``node_timeout``: the head's heartbeat timeout (``--node-timeout``); ``grace``: how long
    a node may lose the head before it stops itself (``--grace``, for nodes added later).
    """

    def __init__(
        self,
        *,
        head_cpus: float = 1,
        node_timeout: float = 4.0,
        grace: float = 10.0,
        resources: dict[str, float] | None = None,
        dashboard: bool = False,
    ) -> None:
        self.tmp = tempfile.mkdtemp(prefix="lc-", dir="/tmp")
        self.token_file = ""
        if not sessions_root(self.tmp).is_relative_to(self.tmp):  # too long for socket paths
            raise RuntimeError(f"{self.tmp} is too long a path for a cluster's sessions (and their sockets)")
        self.env = {**os.environ, "ACTORLIB_TMPDIR": self.tmp, "ACTORLIB_DASHBOARD_PORT": "0"}
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.grace = grace
        self.node_pids: dict[str, int] = {}
        try:
            self.cli(
                "start", "--head", "--port", str(self.port), "--num-cpus", str(head_cpus), "--node-timeout",
                str(node_timeout), "--resources", json.dumps(resources or {}), "--include-dashboard", str(dashboard),
            )  # fmt: skip
            self.token_file = str(next(Path(self.tmp).glob("actorlib-*/session_2*/token")))
        except BaseException:
            self.shutdown()
            raise
        self.env["ACTORLIB_TOKEN_FILE"] = self.token_file

    def cli(self, *args: str) -> str:
        """Run ``actorlib ARGS`` against this cluster; its stdout. Raises RuntimeError if it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "actorlib", *args], capture_output=True, text=True, timeout=CLI_TIMEOUT, env=self.env
        )
        if done.returncode != 0:
            raise RuntimeError(f"actorlib {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def add_node(self, ip: str, *, num_cpus: float = 1, resources: dict[str, float] | None = None) -> int:
        """Start a worker node listening on ``ip`` (a loopback address: 127.0.0.2, ...); its pid."""
        before = set(self._ready_pids("node.json"))
        self.cli(
            "start", "--address", self.address, "--token-file", self.token_file, "--node-ip-address", ip,
            "--num-cpus", str(num_cpus), "--resources", json.dumps(resources or {}), "--grace", str(self.grace),
        )  # fmt: skip
        (pid,) = set(self._ready_pids("node.json")) - before
        self.node_pids[ip] = pid
        return pid

    def connect(self, **options: Any) -> Any:
        """``actorlib.init()`` this process as a driver of the cluster (``options``: init's)."""
        import actorlib

        os.environ["ACTORLIB_TOKEN_FILE"] = self.token_file
        return actorlib.init(address=self.address, **options)

    def head_pid(self) -> int | None:
        pids = self._ready_pids("head.json")
        return pids[0] if pids else None

    def processes(self) -> list[int]:
        """Every live process of this cluster: those that carry its ``ACTORLIB_TMPDIR`` (orphans
        of a killed process included, whoever their parent is now)."""
        found = []
        for process in psutil.process_iter(["pid"]):
            try:
                if process.environ().get("ACTORLIB_TMPDIR") == self.tmp and process.status() != psutil.STATUS_ZOMBIE:
                    found.append(process.info["pid"])
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        return found

    def shutdown(self, grace: float = 5.0, wait: float = 15.0, keep_logs: str | os.PathLike[str] | None = None) -> list[int]:
        """``actorlib stop`` this cluster; the pids still alive ``wait`` seconds later (none, we
        hope: they are listed, not killed). The temporary directory goes if nothing is left.

        ``keep_logs``: a directory to copy every session's logs into first (``SESSION/logs``)."""
        try:
            if sessions_root(self.tmp).is_relative_to(self.tmp):  # never another cluster's sessions
                self.cli("stop", "--grace-period", str(grace))
        except (RuntimeError, subprocess.TimeoutExpired):
            pass  # what it could not stop shows below
        deadline = time.monotonic() + wait
        left = self.processes()
        while left and time.monotonic() < deadline:
            time.sleep(0.05)
            left = self.processes()
        if keep_logs is not None:
            self.copy_logs(keep_logs)
        if not left:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return left

    def copy_logs(self, to: str | os.PathLike[str]) -> list[Path]:
        """Copy the logs of this cluster's sessions (the head's and each node's) into ``to``;
        the directories written, one per session."""
        written = []
        for logs in sorted(Path(self.tmp).glob("actorlib-*/session_2*/logs")):
            target = Path(to) / logs.parent.name / "logs"
            shutil.copytree(logs, target, dirs_exist_ok=True)
            written.append(target)
        return written

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        import actorlib

        if actorlib.is_initialized():
            actorlib.shutdown()
        self.shutdown()

    def _ready_pids(self, name: str) -> list[int]:
        return [json.loads(p.read_text())["pid"] for p in Path(self.tmp).glob(f"actorlib-*/session_2*/{name}")]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
