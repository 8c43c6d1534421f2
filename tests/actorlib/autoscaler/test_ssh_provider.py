"""The ssh provider end to end, against a real OpenSSH server this test runs on loopback.

`actorlib up` starts the head over SSH on 127.0.0.1; its autoscaler launches a worker over SSH
on 127.0.0.2 when a task needs it, and stops it (over SSH) once idle; `actorlib down` stops the
head. Each "machine" keeps its sessions in its own ACTORLIB_TMPDIR, so `actorlib stop` run on
one of them stops only that one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

import actorlib

from ..integration.conftest import _stop_shared, poll, processes_mentioning, wait_gone
from ..multinode.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[3]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _sshd_problem() -> str | None:
    if not Path(SSHD).exists():
        return "OpenSSH's sshd is not installed (Debian: apt-get install openssh-server; .ci/run does it)"
    if os.geteuid() != 0:
        return "sshd needs root here (its privilege separation directory and user)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen is not installed"
    return None


class Sshd:
    """sshd on 127.0.0.1-3 at a free port, with its own host key and one authorized client key."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
        shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
        config = folder / "sshd_config"
        config.write_text(
            textwrap.dedent(
                f"""\
                Port {self.port}
                ListenAddress 127.0.0.1
                ListenAddress 127.0.0.2
                ListenAddress 127.0.0.3
                HostKey {folder}/host_key
                AuthorizedKeysFile {folder}/authorized_keys
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                StrictModes no
                UsePAM no
                PidFile none
                """
            )
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.log = open(folder / "sshd.log", "wb")
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=self.log, stderr=subprocess.STDOUT)
        poll(self._listening, timeout=20, interval=0.05)

    def _listening(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"sshd exited with {self.process.returncode}: {Path(self.log.name).read_text()}")
        try:
            socket.create_connection(("127.0.0.2", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "actorlib", *args], capture_output=True, text=True, timeout=180, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"actorlib {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def test_the_ssh_provider_end_to_end():
    problem = _sshd_problem()
    if problem:
        pytest.skip(problem)
    tmp = Path(tempfile.mkdtemp(prefix="s", dir="/tmp"))  # short: each machine's sessions go in tmp/<last octet>
    sshd = Sshd(tmp)
    head_port = free_port()
    config = tmp / "cluster.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            cluster_name: ssh-e2e
            provider:
              type: ssh
              head_ip: 127.0.0.1
              worker_ips: [127.0.0.2, 127.0.0.3]
              ssh_port: {sshd.port}
              remote_dir: {tmp}/remote
            auth:
              ssh_user: root
              ssh_private_key: {tmp}/client_key
            head_port: {head_port}
            token_file: {tmp}/token
            max_workers: 2
            idle_timeout_s: 2
            cooldown_s: 0
            env:
              PATH: {Path(sys.executable).parent}:$PATH
              PYTHONPATH: {ROOT}
              ACTORLIB_TMPDIR: {tmp}/${{ACTORLIB_NODE_IP##*.}}
              ACTORLIB_DASHBOARD_PORT: "0"  # never the fixed 8265: other clusters may run beside
            available_node_types:
              head:
                resources: {{CPU: 1}}
              remote_worker:
                resources: {{CPU: 1, remote: 1}}
                max_workers: 2
            """
        )
    )
    try:
        up = cli("up", str(config), "--yes")
        assert "head up at 127.0.0.1" in up.stdout
        _stop_shared()
        os.environ["ACTORLIB_TOKEN_FILE"] = f"{tmp}/token"
        actorlib.init(address=f"127.0.0.1:{head_port}")
        try:

            @actorlib.remote(resources={"remote": 1})
            def where(gate: str) -> str:
                """Says where it runs, then keeps its node busy until the test's go."""
                Path(f"{gate}.started").write_text(actorlib.get_runtime_context().get_node_id())
                deadline = time.monotonic() + 300
                while not Path(gate).exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
                return actorlib.get_runtime_context().get_node_id()

            gate = tmp / "go"
            ref = where.remote(str(gate))
            started = Path(f"{gate}.started")
            poll(started.exists, timeout=120, interval=0.05)  # a worker launched over SSH runs it
            (worker,) = [n for n in actorlib.nodes() if n["Alive"] and not n["IsHead"]]
            assert worker["NodeID"] == started.read_text() and worker["NodeManagerAddress"] == "127.0.0.2"
            # While the task holds the worker (an idle one goes after idle_timeout_s: 2 s, less
            # than this command may take on a loaded machine), the status shows it.
            shown = cli("exec", str(config), "actorlib status")  # over SSH, on the head's machine
            assert "Autoscaler (ssh provider, cluster 'ssh-e2e'): workers 1 remote_worker" in shown.stdout
            gate.touch()
            assert actorlib.get(ref, timeout=60) == worker["NodeID"]
            poll(lambda: not [n for n in actorlib.nodes() if n["Alive"] and not n["IsHead"]], timeout=60, interval=0.2)
        finally:
            actorlib.shutdown()
            os.environ.pop("ACTORLIB_TOKEN_FILE", None)
        down = cli("down", str(config), "--yes")
        assert "stopped the head on 127.0.0.1" in down.stdout
        others = [pid for pid in processes_mentioning(str(tmp)) if pid != sshd.process.pid]
        assert not wait_gone(others, 20), "cluster processes left after `actorlib down`"
    finally:
        for pid in [p for p in processes_mentioning(str(tmp)) if p != sshd.process.pid]:
            subprocess.run(["kill", "-9", str(pid)], check=False)
        sshd.stop()
        time.sleep(0)
        assert sshd.process.poll() is not None
        shutil.rmtree(tmp, ignore_errors=True)
