"""``actorlib start``: a head (``--head``) or a worker node (``--address``), in the background."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import click
import msgspec

from ..cluster import head_address, new_session, parts, split_host_port

START_TIMEOUT = 60.0


@click.command()
@click.option("--head", is_flag=True, help="Start a head (which also runs a node).")
@click.option("--address", help="Join the cluster whose head is at HOST:PORT.")
@click.option("--port", type=int, default=6379, show_default=True, help="The head's TCP port.")
@click.option("--node-ip-address", help="The IP this node listens on [head: 127.0.0.1; node: the one that reaches the head].")
@click.option("--num-cpus", type=float, help="CPUs to offer [default: all cores].")
@click.option("--num-gpus", type=float, help="GPUs to offer [default: $CUDA_VISIBLE_DEVICES].")
@click.option("--resources", default="{}", help='Custom resources as JSON, e.g. \'{"ssd": 1}\'.')
@click.option("--object-store-memory", type=int, help="Bytes of shared memory for large objects.")
@click.option(
    "--object-spilling-directory", type=click.Path(file_okay=False), envvar="ACTORLIB_OBJECT_SPILLING_DIRECTORY",
    help="Where a full object store spills objects [default: under the session; env: ACTORLIB_OBJECT_SPILLING_DIRECTORY].",
)
@click.option(
    "--object-spilling-limit", type=click.IntRange(min=0), envvar="ACTORLIB_OBJECT_SPILLING_LIMIT",
    help="Bytes of disk the store may spill (0: never spill) [default: the disk's free space less 5%; env: ACTORLIB_OBJECT_SPILLING_LIMIT].",
)
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="The cluster token (joining node).")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True, help="Where the head's HTTP API (jobs) listens; keep it loopback unless you must.")
@click.option("--dashboard-port", type=int, default=8265, show_default=True, envvar="ACTORLIB_DASHBOARD_PORT", help="The head's HTTP API port (0: any free port) [env: ACTORLIB_DASHBOARD_PORT].")
@click.option("--include-dashboard", type=bool, default=True, show_default=True, help="Serve the HTTP API (jobs) on the head.")
@click.option("--node-timeout", type=float, default=4.0, show_default=True, help="Seconds without a heartbeat before a node is dead (head).")
@click.option("--grace", type=float, default=10.0, show_default=True, help="Seconds a node may lose the head before it stops itself.")
@click.option("--block", is_flag=True, help="Run in the foreground until interrupted.")
@click.option("--memory", type=int, help="Bytes of memory to offer as the `memory` resource [default: 70% of RAM].")
@click.option("--labels", default="{}", help='Node labels as JSON, e.g. \'{"zone": "a"}\'.')
@click.option(
    "--autoscaling-config", type=click.Path(exists=True, dir_okay=False),
    help="Head: run an autoscaler for this cluster config (see `actorlib up`).",
)  # fmt: skip
def start(
    head: bool,
    address: str | None,
    port: int,
    node_ip_address: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    resources: str,
    object_store_memory: int | None,
    object_spilling_directory: str | None,
    object_spilling_limit: int | None,
    token_file: str | None,
    dashboard_host: str,
    dashboard_port: int,
    include_dashboard: bool,
    node_timeout: float,
    grace: float,
    block: bool,
    memory: int | None,
    labels: str,
    autoscaling_config: str | None,
) -> None:
    """Start a head or a worker node on this machine, in the background.

    A head given --token-file uses that token instead of a new one.
    """
    if head == bool(address):
        raise click.UsageError("give exactly one of --head or --address HOST:PORT")
    if not 0 <= dashboard_port <= 65535:
        raise click.BadParameter("must be a port number (0: any free port)", param_hint="--dashboard-port")
    custom = _json_option(resources, "--resources")
    node_labels = _json_option(labels, "--labels")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in node_labels.items()):
        raise click.BadParameter("labels map names to strings", param_hint="--labels")
    if autoscaling_config:
        if not head:
            raise click.UsageError("--autoscaling-config is for a head (--head)")
        autoscaling_config = _checked_config(autoscaling_config)
    from ..cluster import InitOptions

    options = InitOptions.check(
        None, num_cpus=num_cpus, num_gpus=num_gpus, resources=custom, object_store_memory=object_store_memory, memory=memory,
        object_spilling_directory=object_spilling_directory, object_spilling_limit=object_spilling_limit,
    )
    ip = node_ip_address or ("127.0.0.1" if head else _ip_towards(address or ""))
    token_path = str(Path(token_file).resolve()) if token_file else ""  # before a new session moves links
    if head and token_path:  # refused before anything starts
        from ..cluster import check_token_file

        try:
            check_token_file(token_file or token_path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--token-file") from None
    if not head and not token_path:
        token_path = _local_token(address or "")
    session = new_session(with_token=head)
    if head and token_path:  # the cluster's token, kept by `actorlib up`
        from ..cluster import adopt_token

        adopt_token(session, token_path)
        token_path = ""
    config = options.node_config(
        session,
        ip=ip,
        is_head=head,
        tcp=True,
        head_port=port if head else 0,
        head_address=address or head_address(session),  # the head's own workers use its Unix socket
        token_file=token_path,
        grace=grace,
        node_timeout=node_timeout,
        dashboard_host=dashboard_host,
        dashboard_port=dashboard_port if head and include_dashboard else -1,
        labels=node_labels,
        autoscaling_config=autoscaling_config or "",
    )  # fmt: skip
    module = "actorlib._head._daemon" if head else "actorlib._node"  # the daemon supervises the head
    argv = [sys.executable, "-m", module, msgspec.json.encode(config).decode()]
    if block:
        os.execv(sys.executable, argv)
    info = _spawn(argv, session, "head.json" if head else "node.json")
    if head:
        _print_head(info, session, ip, port)
    else:
        click.echo(f"Started a node (pid {info['pid']}) joined to {address}; its logs are in {session / 'logs'}")


def _json_option(text: str, name: str) -> dict:  # type: ignore[type-arg]
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None
    if not isinstance(value, dict):
        raise click.BadParameter("give a JSON object", param_hint=name)
    return value


def _checked_config(path: str) -> str:
    """The cluster config's absolute path, once it validates (the head's autoscaler reads it)."""
    from ..cluster import ConfigError, load_config

    try:
        load_config(path)
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--autoscaling-config") from None
    return str(Path(path).resolve())


def _local_token(address: str) -> str:
    """The token file of a head on this machine at ``address``, or $ACTORLIB_TOKEN_FILE."""
    from ..cluster import TOKEN_FILE_ENV, parts, running_sessions

    for session, info in running_sessions():
        if address in parts(str(info["address"])) and (session / "token").exists():
            return str(session / "token")
    if os.environ.get(TOKEN_FILE_ENV):
        return str(Path(os.environ[TOKEN_FILE_ENV]).resolve())
    raise click.UsageError(
        f"no token for the cluster at {address}: copy the head's token file to this machine and pass --token-file "
        f"(or set {TOKEN_FILE_ENV})"
    )


def _spawn(argv: list[str], session: Path, ready: str) -> dict[str, object]:
    logs = session / "logs"
    name = "daemon" if ready == "head.json" else "node"
    with open(logs / f"{name}.out", "ab") as out, open(logs / f"{name}.err", "ab") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if (session / ready).exists():
            return json.loads((session / ready).read_text())
        if process.poll() is not None:
            errors = (logs / f"{name}.err").read_text(errors="replace") + _read(logs / "head.err")
            lines = errors.strip().splitlines()
            cause = lines[-1].rpartition("failed to start: ")[2] if lines else f"exit code {process.returncode}"
            if "Address already in use" in cause and "--dashboard-port" not in cause:
                cause += " (another cluster on this port? choose one with --port)"
            what = "head" if ready == "head.json" else "node"
            raise click.ClickException(f"the {what} failed to start: {cause}\n(details in {logs / (name + '.err')})")
        time.sleep(0.05)
    process.kill()
    raise click.ClickException(f"it did not start within {START_TIMEOUT:g}s; see {logs}")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _print_head(info: dict[str, object], session: Path, ip: str, port: int) -> None:
    token = session / "token"
    # The address the head bound (with --port 0, the port it was given); ours if it reports none.
    tcp = [part for part in parts(str(info.get("address", ""))) if not part.startswith("unix:")]
    if tcp:
        ip, _, bound = tcp[0].rpartition(":")
        port = int(bound)
    click.echo(f"Started the actorlib head (pid {info['pid']}, restarted if it dies); session {session}")
    click.echo(f"  address:    {ip}:{port}")
    click.echo(f"  token file: {token}   (mode 0600: it grants full control of the cluster)")
    if info.get("dashboard"):
        click.echo(f"  HTTP API:   {info['dashboard']}   (jobs: actorlib job submit --address {info['dashboard']} -- ...)")
        click.echo(f"  dashboard:  {info['dashboard']}/   (log in with the token file's contents)")
        click.echo(f"  metrics:    {info['dashboard']}/metrics   (scrapers may use the read-only {session / 'metrics_token'})")
        from ..cluster import is_loopback

        host = str(info["dashboard"]).split("//", 1)[1].rsplit(":", 1)[0]
        if not is_loopback(host):
            click.secho(f"  WARNING: the HTTP API listens on {host}, reachable from other machines", fg="red", bold=True)
    click.echo("To join a worker node (copy the token file to its machine first):")
    click.echo(f"  actorlib start --address {ip}:{port} --token-file {token}")
    click.echo("To connect a driver on this machine:  actorlib.init(address=\"auto\")")
    click.echo(f"  elsewhere:  ACTORLIB_TOKEN_FILE=<token file> with actorlib.init(address=\"{ip}:{port}\")")
    click.echo("To stop every cluster process of yours on this machine:  actorlib stop")


def _ip_towards(address: str) -> str:
    """The local IP a connection to ``address`` would use."""
    host, port = split_host_port(address)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((host, port))
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"
