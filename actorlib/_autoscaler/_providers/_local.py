"""The ``local`` provider: worker nodes as processes on this machine, each on its own loopback address.

A node is started with the cluster's setup and start commands (``actorlib start --address ...``
by default) and stopped by signalling its process, found through its session's ready file
(never ``actorlib stop``, which would stop every cluster of this user on the machine).
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import signal
import sys

import psutil
import trio

from ..._driver._discovery import running_sessions
from .._commands import WORKER_START, default, node_env, script
from .._config import CLUSTER_LABEL, INSTANCE_LABEL, TYPE_LABEL, ClusterConfig, LocalProvider
from ._base import Instance, LaunchError, Placement

STOP_GRACE = 10.0  # seconds between SIGTERM and SIGKILL


def local_cli() -> str:
    """``actorlib`` as this interpreter runs it (so a node runs the same installation)."""
    return f"{shlex.quote(sys.executable)} -m actorlib"


class LocalNodeProvider:
    name = "local"

    def __init__(self, config: ClusterConfig, placement: Placement) -> None:
        assert isinstance(config.provider, LocalProvider)
        self.config = config
        self.placement = placement
        self.provider = config.provider
        self._claimed: dict[str, str] = {}  # ip -> instance id, while launching

    def _ips(self) -> list[str]:
        if self.provider.worker_ips:
            return list(self.provider.worker_ips)
        base = ipaddress.ip_address("127.0.0.2")
        return [str(base + i) for i in range(250) if str(base + i) != self.provider.head_ip]

    async def create(self, node_type: str, instance_id: str) -> Instance:
        used = {instance.ip for instance in await self.list()} | set(self._claimed)
        ip = next((ip for ip in self._ips() if ip not in used), None)
        if ip is None:
            raise LaunchError(f"no free address for another node (provider.worker_ips: {', '.join(self._ips())})")
        self._claimed[ip] = instance_id
        try:
            await self._run(node_type, instance_id, ip)
        finally:
            del self._claimed[ip]
        return Instance(instance_id, node_type, ip)

    async def _run(self, node_type: str, instance_id: str, ip: str) -> None:
        config = self.config
        env = node_env(
            config, node_type, instance_id, NODE_IP=ip, HEAD_ADDRESS=self.placement.head_address,
            TOKEN_FILE=self.placement.token_file,
        )  # fmt: skip
        commands = config.setup_commands_of(node_type) + default(config.worker_start_commands, WORKER_START, local_cli())
        text = script(env, config.env, commands)
        result = await trio.run_process(["bash", "-c", text], capture_stdout=True, capture_stderr=True, check=False)
        if result.returncode != 0:
            output = (result.stderr or result.stdout).decode(errors="replace").strip().splitlines()
            raise LaunchError(f"exit code {result.returncode}: {output[-1] if output else 'no output'}")

    async def terminate(self, instance_id: str) -> None:
        for pid in self._pids(instance_id):
            await _stop(pid)

    async def list(self) -> list[Instance]:
        return [instance for instance, _pid in self._found()]

    def _pids(self, instance_id: str) -> list[int]:
        return [pid for instance, pid in self._found() if instance.instance_id == instance_id]

    def _found(self) -> list[tuple[Instance, int]]:
        found = []
        for _session, info in running_sessions("node.json"):
            labels = info.get("labels")
            if not isinstance(labels, dict) or labels.get(CLUSTER_LABEL) != self.config.cluster_name:
                continue
            instance = Instance(str(labels.get(INSTANCE_LABEL, "")), str(labels.get(TYPE_LABEL, "")), str(info.get("ip", "")))
            found.append((instance, int(info["pid"])))  # type: ignore[call-overload]
        return found


async def _stop(pid: int) -> None:
    """SIGTERM (the node stops its workers in order), SIGKILL after the grace period."""
    try:
        process = psutil.Process(pid)
        process.send_signal(signal.SIGTERM)
    except psutil.NoSuchProcess:
        return
    with trio.move_on_after(STOP_GRACE):
        while _running(process):
            await trio.sleep(0.05)
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
