"""What ``actorlib up|down|exec|attach`` do: start and stop a cluster's head, run commands there.

The local provider runs the head on this machine; the ssh provider on ``provider.head_ip``
over SSH. The head's autoscaler then launches the workers.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import trio
import yaml

from .._wire import new_token, read_token, write_token
from ._commands import HEAD_START, default, node_env, script
from ._config import ClusterConfig, KubernetesProvider, LocalProvider, SshProvider
from ._providers._base import LaunchError


class LauncherError(Exception):
    """``up``/``down``/``exec``/``attach`` cannot do it; the message says why."""


def head_ip(config: ClusterConfig) -> str:
    provider = config.provider
    if isinstance(provider, KubernetesProvider):
        return provider.head_service
    return provider.head_ip


def head_address(config: ClusterConfig) -> str:
    return f"{head_ip(config)}:{config.head_port}"


def ensure_token(config: ClusterConfig) -> Path:
    """The cluster's token file on this machine, created (0600) the first time."""
    path = config.token_path
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_token(path, new_token())
    return path


def not_for_kubernetes(config: ClusterConfig, verb: str) -> None:
    if isinstance(config.provider, KubernetesProvider):
        raise LauncherError(
            f"`actorlib {verb}` does not manage Kubernetes clusters: apply the manifests in deploy/kubernetes/ "
            "with kubectl (docs/deploy.md), and use `kubectl exec -it deploy/actorlib-head -- bash` to reach the head"
        )


# ---- the head ----------------------------------------------------------------------------------


def head_running(config: ClusterConfig) -> bool:
    """Whether the head is up: a head of ours on this machine (local provider), or anything
    answering at its address (ssh provider)."""
    from .._driver._discovery import running_sessions
    from .._wire import parts

    if isinstance(config.provider, LocalProvider):
        return any(head_address(config) in parts(str(info["address"])) for _session, info in running_sessions())
    import socket

    try:
        socket.create_connection((head_ip(config), config.head_port), timeout=2).close()
    except OSError:
        return False
    return True


def start_head(config: ClusterConfig, config_path: Path) -> None:
    """Run the setup and head start commands where the head goes. Raises LauncherError."""
    not_for_kubernetes(config, "up")
    token = ensure_token(config)
    if isinstance(config.provider, LocalProvider):
        _start_local_head(config, config_path.resolve(), token)
    else:
        asyncio.run(_start_ssh_head(config, config_path, token))  # asyncssh runs on asyncio


def _start_local_head(config: ClusterConfig, config_path: Path, token: Path) -> None:
    from ._providers._local import local_cli

    env = node_env(
        config, config.head_node_type, "", NODE_IP=head_ip(config), TOKEN_FILE=str(token), CLUSTER_CONFIG=str(config_path)
    )
    commands = [*config.setup_commands, *config.head_setup_commands, *default(config.head_start_commands, HEAD_START, local_cli())]
    result = subprocess.run(["bash", "-c", script(env, config.env, commands)], capture_output=True, text=True)
    if result.returncode != 0:
        raise LauncherError(f"starting the head failed (exit code {result.returncode}):\n{(result.stderr or result.stdout).strip()}")


async def _start_ssh_head(config: ClusterConfig, config_path: Path, token: Path) -> None:
    from ._providers._ssh import run, ssh_session, upload

    provider = config.provider
    assert isinstance(provider, SshProvider)
    folder, files = provider.directory(config.cluster_name), provider.files_dir(config.cluster_name)
    ip = provider.head_ip
    try:
        async with ssh_session(config, ip) as conn:
            await run(conn, f"mkdir -p {folder} && chmod 700 {folder}", ip)
            await upload(conn, token, f"{folder}/token", ip)
            await upload(conn, Path(config.auth.ssh_private_key).expanduser(), f"{folder}/ssh_key", ip)
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / "cluster.yaml"
                copy.write_text(_config_for_head(config_path, f"{files}/ssh_key"))
                await upload(conn, copy, f"{folder}/cluster.yaml", ip)
            env = node_env(config, config.head_node_type, "", NODE_IP=ip)
            env.update(ACTORLIB_TOKEN_FILE=f"{folder}/token", ACTORLIB_CLUSTER_CONFIG=f"{folder}/cluster.yaml")
            commands = [*config.setup_commands, *config.head_setup_commands, *default(config.head_start_commands, HEAD_START, "actorlib")]
            await run(conn, script(env, config.env, commands, raw=frozenset({"ACTORLIB_TOKEN_FILE", "ACTORLIB_CLUSTER_CONFIG"})), ip)
    except LaunchError as exc:
        raise LauncherError(f"starting the head on {ip} failed: {exc}") from None


def _config_for_head(config_path: Path, key: str) -> str:
    """The config as the head's autoscaler reads it: the SSH key where it was copied."""
    data = yaml.safe_load(config_path.read_text())
    data.setdefault("auth", {})["ssh_private_key"] = key
    return yaml.safe_dump(data, sort_keys=False)


# ---- waiting for nodes ------------------------------------------------------------------------------


async def wait_for_workers(config: ClusterConfig, echo: Callable[[str], None], timeout: float) -> bool:
    """Report progress until every node type has its min_workers (False: not within ``timeout``)."""
    from .._wire import ClusterInfoReply, ClusterInfoRequest, HeadMessage, connect

    token = read_token(config.token_path)
    wanted = {name: t.min_workers for name, t in config.worker_types.items() if t.min_workers}
    last = ""
    with trio.move_on_after(timeout):
        while True:
            try:
                async with trio.open_nursery() as nursery:
                    channel = await connect(nursery, head_address(config), token, HeadMessage, name="cli:up")
                    channel.send_nowait(ClusterInfoRequest(req=1))
                    reply = await channel.receive()
                    await channel.aclose()
                    nursery.cancel_scope.cancel()
            except (OSError, EOFError, ConnectionError):
                await trio.sleep(0.5)
                continue
            assert isinstance(reply, ClusterInfoReply)
            view = reply.autoscaler
            up = view.workers if view is not None else {}
            launching = len(view.launching) if view is not None else 0
            line = ", ".join(f"{name} {up.get(name, 0)}/{count}" for name, count in wanted.items())
            line = f"  workers up: {line or 'none needed yet (min_workers 0: nodes come with demand)'}; {launching} launching"
            if view is not None and view.failed:
                line += f"; last failed launch: {view.failed[-1].error}"
            if line != last:
                echo(line)
                last = line
            if all(up.get(name, 0) >= count for name, count in wanted.items()):
                return True
            await trio.sleep(0.5)
    return False


# ---- stopping ---------------------------------------------------------------------------------------


def stop_cluster(config: ClusterConfig, echo: Callable[[str], None]) -> None:
    """Stop the head first (so its autoscaler launches nothing more), then every worker."""
    not_for_kubernetes(config, "down")
    if isinstance(config.provider, LocalProvider):
        trio.run(_stop_local, config, echo)
    else:
        asyncio.run(_stop_ssh(config, echo))


async def _stop_local(config: ClusterConfig, echo: Callable[[str], None]) -> None:
    from .._driver._discovery import running_sessions
    from .._wire import parts
    from ._providers._base import Placement
    from ._providers._local import LocalNodeProvider, _stop

    for session, info in running_sessions():
        if head_address(config) in parts(str(info["address"])):
            daemon = [int(i["pid"]) for s, i in running_sessions("daemon.json") if s == session]  # type: ignore[call-overload]
            for pid in [*daemon, int(info["pid"])]:  # type: ignore[call-overload]
                await _stop(pid)
            echo(f"  stopped the head at {head_address(config)}")
    provider = LocalNodeProvider(config, Placement("", ""))
    instances = await provider.list()
    async with trio.open_nursery() as nursery:
        for instance in instances:
            nursery.start_soon(provider.terminate, instance.instance_id)
    echo(f"  stopped {len(instances)} worker node{'s' if len(instances) != 1 else ''}")


async def _stop_ssh(config: ClusterConfig, echo: Callable[[str], None]) -> None:
    from ._providers._ssh import stop_node

    provider = config.provider
    assert isinstance(provider, SshProvider)
    failures = []
    for ip, head in [(provider.head_ip, True), *((ip, False) for ip in provider.worker_ips)]:
        node_type = config.head_node_type if head else next(iter(config.worker_types), config.head_node_type)
        try:
            await stop_node(config, ip, node_type, head=head)
            echo(f"  stopped {'the head' if head else 'worker node'} on {ip}")
        except LaunchError as exc:
            failures.append(str(exc))
    if failures:
        raise LauncherError("some machines could not be reached:\n" + "\n".join(failures))


# ---- commands on the head ---------------------------------------------------------------------------


def exec_on_head(config: ClusterConfig, command: str) -> int:
    """Run a shell command on the head's machine, with ACTORLIB_ADDRESS and its token set; its exit code."""
    not_for_kubernetes(config, "exec")
    if isinstance(config.provider, LocalProvider):
        return subprocess.run(["bash", "-c", command], env={**os.environ, **_driver_env(config)}).returncode
    return asyncio.run(_exec_ssh(config, command))


def _driver_env(config: ClusterConfig) -> dict[str, str]:
    return {"ACTORLIB_ADDRESS": head_address(config), "ACTORLIB_TOKEN_FILE": str(ensure_token(config))}


async def _exec_ssh(config: ClusterConfig, command: str) -> int:
    from ._providers._ssh import run, ssh_session

    provider = config.provider
    assert isinstance(provider, SshProvider)
    try:
        async with ssh_session(config, provider.head_ip) as conn:
            result = await run(conn, _remote_env(config) + command + "\n", provider.head_ip, check=False)
    except LaunchError as exc:
        raise LauncherError(str(exc)) from None
    sys.stdout.write(str(result.stdout or ""))
    sys.stderr.write(str(result.stderr or ""))
    return int(result.exit_status or 0)


def _remote_env(config: ClusterConfig) -> str:
    provider = config.provider
    assert isinstance(provider, SshProvider)
    lines = [
        f"export ACTORLIB_ADDRESS={head_address(config)}",
        f"export ACTORLIB_TOKEN_FILE={provider.directory(config.cluster_name)}/token",
    ]
    lines += [f"export {name}={value}" for name, value in config.env.items()]
    return "\n".join(lines) + "\n"


def attach_argv(config: ClusterConfig, interactive: bool) -> tuple[list[str], dict[str, str]]:
    """The program ``actorlib attach`` becomes: a shell on the head's machine, set up to reach the cluster."""
    not_for_kubernetes(config, "attach")
    if isinstance(config.provider, LocalProvider):
        env = {**os.environ, **_driver_env(config)}
        return ["bash", "-i"] if interactive else ["bash"], env
    provider = config.provider
    assert isinstance(provider, SshProvider)
    auth = config.auth
    hosts = ["-o", f"UserKnownHostsFile={Path(auth.known_hosts).expanduser()}"] if auth.known_hosts else [
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
    ]  # fmt: skip
    argv = ["ssh", *(["-t"] if interactive else []), "-i", str(Path(auth.ssh_private_key).expanduser())]
    argv += ["-p", str(provider.ssh_port), *hosts, f"{auth.ssh_user}@{provider.head_ip}"]
    argv.append(_remote_env(config).replace("\n", "; ") + ("exec bash -il" if interactive else "exec bash"))
    return argv, dict(os.environ)
