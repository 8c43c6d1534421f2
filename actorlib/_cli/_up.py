"""``actorlib up`` and ``actorlib down``: start and stop a cluster described by a cluster config."""

from __future__ import annotations

from pathlib import Path

import click
import trio


def _load(path: str):  # type: ignore[no-untyped-def]
    from ..cluster import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _describe(config) -> list[str]:  # type: ignore[no-untyped-def]
    from ..cluster import launcher

    head_address = launcher.head_address

    def shape(resources: dict[str, float]) -> str:
        return ", ".join(f"{k}: {v:g}" for k, v in resources.items()) or "(defaults)"

    lines = [f"Cluster {config.cluster_name!r}: {type(config.provider).__name__.removesuffix('Provider').lower()} provider"]
    lines.append(f"  head at {head_address(config)}: {shape(config.head_type.resources)}")
    for name, node_type in config.worker_types.items():
        lines.append(f"  {name}: {shape(node_type.resources)}, {node_type.min_workers} to {node_type.max_workers} nodes")
    lines.append(f"  at most {config.max_workers} worker nodes; idle ones stop after {config.idle_timeout_s:g}s")
    return lines


@click.command()
@click.argument("cluster_config", type=click.Path(exists=True, dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--no-wait", is_flag=True, help="Return once the head is up; do not wait for min_workers nodes.")
def up(cluster_config: str, yes: bool, no_wait: bool) -> None:
    """Start the cluster CLUSTER_CONFIG describes: its head, whose autoscaler brings the workers."""
    from ..cluster import launcher

    config = _load(cluster_config)
    for line in _describe(config):
        click.echo(line)
    if not yes:
        click.confirm("Start it?", abort=True)
    try:
        if launcher.head_running(config):
            click.echo(f"The head at {launcher.head_address(config)} is already running (down it first to restart it).")
        else:
            click.echo("Starting the head...")
            launcher.start_head(config, Path(cluster_config))
            click.echo(f"  head up at {launcher.head_address(config)}")
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from None
    if not no_wait:
        wait = config.launch_timeout_s + 30
        if not trio.run(launcher.wait_for_workers, config, click.echo, wait):
            raise click.ClickException(f"the min_workers nodes did not all come up within {wait:g}s; see `actorlib status`")
    token = config.token_path
    click.echo(f"Cluster {config.cluster_name!r} is up. Token file: {token} (0600: it grants full control)")
    click.echo(f"  run a script there:   actorlib exec {cluster_config} 'python script.py'")
    click.echo(f"  connect from here:    ACTORLIB_TOKEN_FILE={token} ACTORLIB_ADDRESS={launcher.head_address(config)} python script.py")
    click.echo(f"  stop it:              actorlib down {cluster_config}")


@click.command()
@click.argument("cluster_config", type=click.Path(exists=True, dir_okay=False))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
def down(cluster_config: str, yes: bool) -> None:
    """Stop the cluster CLUSTER_CONFIG describes: its head, then every worker node."""
    from ..cluster import launcher

    config = _load(cluster_config)
    if not yes:
        click.confirm(f"Stop cluster {config.cluster_name!r} and everything running on it?", abort=True)
    try:
        launcher.stop_cluster(config, click.echo)
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Cluster {config.cluster_name!r} is down.")
