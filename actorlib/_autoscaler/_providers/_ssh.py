"""The ``ssh`` provider: a fixed list of machines, one worker node each, reached with asyncssh.

A launch copies the cluster token to the machine, then runs the setup and start commands
(``actorlib start --address ...``) there; a stop runs the stop commands (``actorlib stop``).
Which machine runs which instance is kept in a file beside the head's session, so a restarted
autoscaler knows them again.

asyncssh runs on asyncio: each SSH conversation is one asyncio program, run in a thread of its
own from the autoscaler's Trio loop (``_on_asyncio``); the CLI runs them with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from .._commands import STOP, WORKER_START, default, node_env, script
from .._config import ClusterConfig, SshProvider
from ._base import Instance, LaunchError, Placement

CONNECT_TIMEOUT = 20.0


class SshNodeProvider:
    name = "ssh"

    def __init__(self, config: ClusterConfig, placement: Placement, state_dir: Path | None) -> None:
        assert isinstance(config.provider, SshProvider)
        self.config = config
        self.provider = config.provider
        self.placement = placement
        self.state_file = Path(state_dir or ".") / f"ssh-{config.cluster_name}.json"
        self.hosts: dict[str, dict[str, str]] = self._load()  # ip -> {"instance_id", "node_type"}

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.hosts))
        tmp.replace(self.state_file)

    async def create(self, node_type: str, instance_id: str) -> Instance:
        ip = next((ip for ip in self.provider.worker_ips if ip not in self.hosts), None)
        if ip is None:
            raise LaunchError(f"every machine in provider.worker_ips runs a node already ({len(self.hosts)})")
        self.hosts[ip] = {"instance_id": instance_id, "node_type": node_type}
        self._save()
        try:
            await _on_asyncio(self._start, ip, node_type, instance_id)
        except BaseException:
            self.hosts.pop(ip, None)
            self._save()
            raise
        return Instance(instance_id, node_type, ip)

    async def _start(self, ip: str, node_type: str, instance_id: str) -> None:
        config = self.config
        folder = self.provider.directory(config.cluster_name)
        async with ssh_session(config, ip) as conn:
            await run(conn, f"mkdir -p {folder} && chmod 700 {folder}", ip)
            await upload(conn, Path(self.placement.token_file), f"{folder}/token", ip)
            env = node_env(config, node_type, instance_id, NODE_IP=ip, HEAD_ADDRESS=self.placement.head_address)
            env["ACTORLIB_TOKEN_FILE"] = f"{folder}/token"
            commands = config.setup_commands_of(node_type) + default(config.worker_start_commands, WORKER_START, "actorlib")
            await run(conn, script(env, config.env, commands, raw=frozenset({"ACTORLIB_TOKEN_FILE"})), ip)

    async def terminate(self, instance_id: str) -> None:
        for ip, held in list(self.hosts.items()):
            if held["instance_id"] == instance_id:
                await _on_asyncio(stop_node, self.config, ip, held["node_type"], instance_id)
                self.hosts.pop(ip, None)
                self._save()

    async def list(self) -> list[Instance]:
        return [Instance(held["instance_id"], held["node_type"], ip) for ip, held in self.hosts.items()]


async def _on_asyncio(fn: Any, *args: Any) -> Any:
    """Run the asyncio coroutine function ``fn(*args)`` to completion in a thread of its own."""
    return await trio.to_thread.run_sync(lambda: asyncio.run(fn(*args)), abandon_on_cancel=True)


async def stop_node(config: ClusterConfig, ip: str, node_type: str, instance_id: str = "", head: bool = False) -> None:
    """Run the stop commands (``actorlib stop`` by default) on a machine."""
    env = node_env(config, node_type, instance_id, NODE_IP=ip)
    commands = default(config.head_stop_commands if head else config.worker_stop_commands, STOP, "actorlib")
    async with ssh_session(config, ip) as conn:
        await run(conn, script(env, config.env, commands), ip)


@asynccontextmanager
async def ssh_session(config: ClusterConfig, ip: str) -> AsyncIterator[Any]:
    """An SSH connection to one of the cluster's machines (LaunchError if it cannot be had)."""
    import asyncssh

    assert isinstance(config.provider, SshProvider)
    auth = config.auth
    where = f"{auth.ssh_user}@{ip}:{config.provider.ssh_port}"
    try:
        conn = await asyncssh.connect(
            ip, port=config.provider.ssh_port, username=auth.ssh_user,
            client_keys=[str(Path(auth.ssh_private_key).expanduser())],
            known_hosts=str(Path(auth.known_hosts).expanduser()) if auth.known_hosts else None,
            connect_timeout=CONNECT_TIMEOUT, agent_path=None,
        )  # fmt: skip
    except (OSError, asyncssh.Error) as exc:
        raise LaunchError(f"ssh {where}: {exc}") from None
    try:
        yield conn
    finally:
        conn.close()
        await conn.wait_closed()


async def run(conn: Any, text: str, ip: str, check: bool = True) -> Any:
    """Run a bash script on the connection; LaunchError (with its last line of output) if it fails."""
    import asyncssh

    try:
        result = await conn.run("bash -s", input=text, check=False)
    except (OSError, asyncssh.Error) as exc:
        raise LaunchError(f"ssh {ip}: {exc}") from None
    if check and result.exit_status != 0:
        output = (str(result.stderr or "") or str(result.stdout or "")).strip().splitlines()
        raise LaunchError(f"on {ip}, exit code {result.exit_status}: {output[-1] if output else 'no output'}")
    return result


async def upload(conn: Any, local: Path, remote: str, ip: str) -> None:
    """Copy a text file there (``remote``: a shell word, ``"$HOME"/...`` expands), readable by its owner only.

    Through ``cat`` rather than SFTP, so a server without the sftp subsystem serves too.
    """
    import asyncssh

    try:
        text = local.read_text()
        result = await conn.run(f"umask 077 && cat > {remote}.part && mv {remote}.part {remote}", input=text, check=False)
    except (OSError, asyncssh.Error) as exc:
        raise LaunchError(f"copying {local} to {ip}:{remote}: {exc}") from None
    if result.exit_status != 0:
        raise LaunchError(f"copying {local} to {ip}:{remote}: {str(result.stderr or '').strip()}")
