"""A head with an autoscaler (local provider) on loopback, started with the CLI; every node
it launches is a real process tree, and nothing may be left when the test ends."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import actorlib

from ..integration.conftest import _stop_shared, poll, processes_mentioning, wait_gone
from ..multinode.conftest import free_port


class Autoscaled:
    """``actorlib start --head --autoscaling-config``; this test process is the driver."""

    def __init__(self, config: str, head_cpus: float = 2) -> None:
        self.tmp = tempfile.mkdtemp(prefix="as-", dir="/tmp")  # short: socket paths have a length limit
        self.env = {**os.environ, "ACTORLIB_TMPDIR": self.tmp}
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.config = Path(self.tmp) / "cluster.yaml"
        self.config.write_text(textwrap.dedent(config))
        self.cli(
            "start", "--head", "--port", str(self.port), "--num-cpus", str(head_cpus), "--node-timeout", "2",
            "--autoscaling-config", str(self.config),
        )  # fmt: skip
        self.token_file = str(next(Path(self.tmp).glob("actorlib-*/session_2*/token")))

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "actorlib", *args], capture_output=True, text=True, timeout=120, env=self.env
        )
        if check and result.returncode != 0:
            raise AssertionError(f"actorlib {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def connect(self) -> None:
        _stop_shared()
        os.environ["ACTORLIB_TOKEN_FILE"] = self.token_file
        actorlib.init(address=self.address)

    def status(self) -> str:
        return self.cli("status", "--address", self.address).stdout

    def workers(self) -> list[dict]:
        """Live worker nodes (not the head), as actorlib.nodes() describes them."""
        return [n for n in actorlib.nodes() if n["Alive"] and not n["IsHead"]]

    def wait_scaled_down(self, timeout: float = 60) -> None:
        poll(lambda: not self.workers(), timeout=timeout, interval=0.1)

    def stop(self) -> None:
        if actorlib.is_initialized():
            actorlib.shutdown()
        os.environ.pop("ACTORLIB_TOKEN_FILE", None)
        result = self.cli("stop", "--grace-period", "5", check=False)
        # Anything the autoscaler was still launching is stopped too: nothing may outlive the test.
        survivors = wait_gone(processes_mentioning(self.tmp), 15)
        if survivors:
            self.cli("stop", "--force", check=False)
        assert not survivors, f"processes left after `actorlib stop`: {survivors}\n{result.stdout}{result.stderr}"
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def autoscaled():
    """A factory: ``autoscaled(config_yaml)`` starts a head with that cluster config and connects."""
    started: list[Autoscaled] = []

    def start(config: str, head_cpus: float = 2) -> Autoscaled:
        cluster = Autoscaled(config, head_cpus)
        started.append(cluster)
        cluster.connect()
        return cluster

    yield start
    for cluster in started:
        cluster.stop()
