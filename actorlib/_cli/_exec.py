"""``actorlib exec`` and ``actorlib attach``: a command, or a shell, on a cluster's head machine."""

from __future__ import annotations

import os
import shutil
import sys

import click

from ._up import _load


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.argument("cluster_config", type=click.Path(exists=True, dir_okay=False))
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(cluster_config: str, command: tuple[str, ...]) -> None:
    """Run COMMAND (a shell command) on the head's machine, connected to the cluster.

    ACTORLIB_ADDRESS and ACTORLIB_TOKEN_FILE are set there, so `actorlib.init()` and
    `actorlib status` reach the cluster. Exits with the command's exit code.
    """
    from ..cluster import launcher

    config = _load(cluster_config)
    try:
        code = launcher.exec_on_head(config, " ".join(command))
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


@click.command()
@click.argument("cluster_config", type=click.Path(exists=True, dir_okay=False))
def attach(cluster_config: str) -> None:
    """Open a shell on the head's machine, connected to the cluster (local and ssh providers)."""
    from ..cluster import launcher

    config = _load(cluster_config)
    try:
        argv, env = launcher.attach_argv(config, interactive=sys.stdin.isatty())
    except launcher.LauncherError as exc:
        raise click.ClickException(str(exc)) from None
    program = shutil.which(argv[0])
    if program is None:
        raise click.ClickException(f"`actorlib attach` needs {argv[0]!r} on PATH")
    sys.stdout.flush()
    os.execve(program, argv, env)
