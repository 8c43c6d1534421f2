"""A multi-node cluster on loopback addresses (127.0.0.1 head, 127.0.0.2, 127.0.0.3 nodes)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import psutil
import pytest

import actorlib

from ..integration.conftest import _stop_shared, alive, poll, wait_gone


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MultiNode:
    """A head and worker nodes started with the CLI, each an OS process tree."""

    def __init__(
        self, nodes: list[dict], head_cpus: float = 1, node_timeout: float = 2.0, grace: float = 3.0, head_args: tuple[str, ...] = ()
    ) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mn-", dir="/tmp")  # short: socket paths have a length limit
        self.env = {**os.environ, "ACTORLIB_TMPDIR": self.tmp}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.node_timeout = node_timeout
        self.grace = grace
        self.outputs: list[subprocess.CompletedProcess] = []  # every CLI run's output (tokens must never show)
        self.cli(
            "start", "--head", "--port", str(self.port), "--num-cpus", str(head_cpus), "--node-timeout", str(node_timeout), *head_args
        )  # fmt: skip
        self.token_file = str(next(Path(self.tmp).glob("actorlib-*/session_2*/token")))
        self.node_pids: dict[str, int] = {}
        for node in nodes:
            self.add_node(**node)

    def cli(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "actorlib", *args], capture_output=True, text=True, timeout=120, env=env or self.env
        )
        self.outputs.append(result)
        if check and result.returncode != 0:
            raise AssertionError(f"actorlib {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def add_node(self, ip: str, cpus: float = 1, resources: dict | None = None, args: tuple[str, ...] = ()) -> int:
        before = set(self._ready_pids("node.json"))
        self.cli(
            "start", "--address", self.address, "--token-file", self.token_file, "--node-ip-address", ip,
            "--num-cpus", str(cpus), "--resources", json.dumps(resources or {}), "--grace", str(self.grace), *args,
        )  # fmt: skip
        (pid,) = set(self._ready_pids("node.json")) - before
        self.node_pids[ip] = pid
        return pid

    def _ready_pids(self, kind: str) -> list[int]:
        return [json.loads(p.read_text())["pid"] for p in Path(self.tmp).glob(f"actorlib-*/session_2*/{kind}")]

    def processes(self) -> list[int]:
        """Every process of the cluster: heads, nodes, zygotes, workers, actors."""
        pids = []
        for pid in self._ready_pids("daemon.json") + self._ready_pids("head.json") + self._ready_pids("node.json"):
            try:
                root = psutil.Process(pid)
                pids += [pid] + [child.pid for child in root.children(recursive=True)]
            except psutil.NoSuchProcess:
                pass
        return [pid for pid in pids if alive(pid)]

    def connect(self) -> None:
        _stop_shared()  # the integration tests' cluster, if it is still up
        os.environ["ACTORLIB_TOKEN_FILE"] = self.token_file
        actorlib.init(address=self.address)

    def disconnect(self) -> None:
        actorlib.shutdown()
        os.environ.pop("ACTORLIB_TOKEN_FILE", None)

    @contextlib.contextmanager
    def connected(self) -> Iterator[Self]:
        """This process is the cluster's driver, once the head and every node started so far
        have joined, while the block runs; then it disconnects and the cluster is stopped
        (:meth:`stop`: no process of it may be left), however the block ends."""
        try:
            self.connect()
            poll(lambda: len(self.node_ids()) == 1 + len(self.node_pids), timeout=30)
            yield self
        finally:
            if actorlib.is_initialized():
                self.disconnect()
            self.stop()

    def node_ids(self) -> dict[str, str]:
        """Node id by IP, for live nodes."""
        return {n["NodeManagerAddress"]: n["NodeID"] for n in actorlib.nodes() if n["Alive"]}

    def stop(self) -> None:
        processes = self.processes()
        result = self.cli("stop", "--grace-period", "5")
        survivors = wait_gone(processes, 10)
        assert not survivors, f"processes left after `actorlib stop`: {survivors}\n{result.stdout}"
        shutil.rmtree(self.tmp, ignore_errors=True)  # kept when something was left, to look at


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + 127.0.0.2 (1 CPU, "ssd") + 127.0.0.3 (2 CPUs, "gpu_like"); this test process is the driver."""
    multi = MultiNode(
        [
            {"ip": "127.0.0.2", "cpus": 1, "resources": {"ssd": 1}},
            {"ip": "127.0.0.3", "cpus": 2, "resources": {"gpu_like": 2}},
        ]
    )
    with multi.connected():
        yield multi
