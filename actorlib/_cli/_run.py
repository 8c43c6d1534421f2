"""``actorlib run script.py [args...]``: run a script against an embedded (or given) cluster."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import trio

import supervisors

from ..cluster import ADDRESS_ENV, InitOptions, start_local_cluster

SCRIPT_STOP_TIMEOUT = 5.0


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--address", envvar=ADDRESS_ENV, help="Run against this cluster instead of a new local one.")
@click.option("--num-cpus", type=float, help="CPUs of the local cluster (default: all cores).")
@click.option("--num-gpus", type=float, help="GPUs of the local cluster.")
@click.option("--object-store-memory", type=int, help="Bytes of shared memory for large objects.")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(address: str | None, num_cpus: float | None, num_gpus: float | None, object_store_memory: int | None, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT with an embedded local cluster, torn down afterwards.

    The script's actorlib.init() connects to that cluster (through
    $ACTORLIB_ADDRESS). Exits with the script's exit status.
    """
    options = InitOptions.check(address, num_cpus=num_cpus, num_gpus=num_gpus, object_store_memory=object_store_memory)
    argv = [sys.executable, script, *args]
    code = trio.run(_run, argv, options)
    sys.exit(code)


async def _run(argv: list[str], options: InitOptions) -> int:
    async with trio.open_nursery() as nursery:
        cluster = None
        env = dict(os.environ)
        if options.address is None:
            cluster = await start_local_cluster(nursery, options)
            env[ADDRESS_ENV] = cluster.head_address
        else:
            env[ADDRESS_ENV] = options.address
        try:
            return await _run_script(nursery, argv, env)
        finally:
            with trio.CancelScope(shield=True):
                if cluster is not None:
                    await cluster.stop()


async def _run_script(nursery: trio.Nursery, argv: list[str], env: dict[str, Any]) -> int:
    script = supervisors.ProcessChild.command(argv, env=env, stdin=None)
    await script.start(nursery)
    try:
        exit = await script.wait()
    finally:
        with trio.CancelScope(shield=True):
            exit = await script.stop(SCRIPT_STOP_TIMEOUT, "actorlib run was interrupted")
    if exit.signal is not None:
        return 128 + exit.signal
    return exit.code or 0
