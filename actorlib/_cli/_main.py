"""``actorlib``: the command group (one module per command)."""

from __future__ import annotations

import click

from ._chaos import chaos
from ._exec import attach, exec_
from ._job import job
from ._list import get, list_, summary
from ._logs import logs
from ._memory import memory
from ._run import run
from ._start import start
from ._status import status
from ._stop import stop
from ._timeline import timeline
from ._tree import tree
from ._up import down, up


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="actorlib")
def main() -> None:
    """actorlib: a distributed actor runtime for Python."""


for command in (run, start, stop, status, job, tree, list_, get, summary, logs, memory, timeline, up, down, exec_, attach, chaos):
    main.add_command(command)
