"""``actorlib job submit|status|logs|stop|delete|list``: jobs over the head's HTTP API (the SDK)."""

from __future__ import annotations

import datetime
import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

import click

STOP_POLL = 0.2  # seconds between status checks while waiting for a stopped job to end
_address = click.option("--address", help="The cluster's HTTP API (http://HOST:PORT) [default: $ACTORLIB_ADDRESS, else the local cluster].")
_token_file = click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="The cluster token [default: $ACTORLIB_TOKEN(_FILE), else the local session's].")


def _client(address: str | None, token_file: str | None) -> Any:
    from ..job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address, token_file=token_file)
    except (ConnectionError, OSError) as exc:
        raise click.ClickException(str(exc)) from None


def _calling(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run one SDK call; its errors become one clear CLI error (exit 1), no traceback."""
    from ..exceptions import AuthenticationError, JobSubmissionError

    try:
        return fn(*args, **kwargs)
    except (JobSubmissionError, AuthenticationError, ConnectionError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None


def _json_option(text: str | None, name: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=name) from None


@click.group()
def job() -> None:
    """Submit, follow and stop jobs on a cluster."""


@job.command(context_settings={"ignore_unknown_options": True})
@_address
@_token_file
@click.option("--submission-id", help="The job's id [default: a new raysubmit_... id].")
@click.option("--working-dir", help="A local directory to upload and run the entrypoint in.")
@click.option("--runtime-env-json", help='The runtime_env as JSON, e.g. \'{"env_vars": {"A": "1"}}\'.')
@click.option("--metadata-json", help="String-to-string metadata as JSON.")
@click.option("--entrypoint-num-cpus", type=float, help="CPUs the entrypoint needs.")
@click.option("--entrypoint-num-gpus", type=float, help="GPUs the entrypoint needs.")
@click.option("--entrypoint-memory", type=int, help="Bytes of memory the entrypoint needs.")
@click.option("--entrypoint-resources", help="Custom resources the entrypoint needs, as JSON.")
@click.option("--no-wait", is_flag=True, help="Return once submitted instead of following the logs.")
@click.argument("entrypoint", nargs=-1, required=True, type=click.UNPROCESSED)
def submit(
    address: str | None, token_file: str | None, submission_id: str | None, working_dir: str | None,
    runtime_env_json: str | None, metadata_json: str | None, entrypoint_num_cpus: float | None,
    entrypoint_num_gpus: float | None, entrypoint_memory: int | None, entrypoint_resources: str | None,
    no_wait: bool, entrypoint: tuple[str, ...],
) -> None:  # fmt: skip
    """Submit ENTRYPOINT (after --) and follow its logs; exit 1 unless it succeeds."""
    runtime_env = _json_option(runtime_env_json, "--runtime-env-json") or {}
    if working_dir:
        runtime_env["working_dir"] = working_dir
    client = _client(address, token_file)
    sid = _calling(
        client.submit_job, entrypoint=shlex.join(entrypoint), submission_id=submission_id, runtime_env=runtime_env,
        metadata=_json_option(metadata_json, "--metadata-json"), entrypoint_num_cpus=entrypoint_num_cpus,
        entrypoint_num_gpus=entrypoint_num_gpus, entrypoint_memory=entrypoint_memory,
        entrypoint_resources=_json_option(entrypoint_resources, "--entrypoint-resources"),
    )  # fmt: skip
    click.echo(f"Job '{sid}' submitted successfully", err=True)
    click.echo(sid)
    if no_wait:
        click.echo(f"Follow it with:  actorlib job logs --follow {sid}", err=True)
        return
    _follow(client, sid)
    sys.exit(_report(client, sid))


@job.command()
@_address
@_token_file
@click.argument("job_id")
def status(address: str | None, token_file: str | None, job_id: str) -> None:
    """Print the job's status (and why it failed)."""
    client = _client(address, token_file)
    _report(client, job_id)


@job.command()
@_address
@_token_file
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the job ends.")
@click.argument("job_id")
def logs(address: str | None, token_file: str | None, follow: bool, job_id: str) -> None:
    """Print the job's output (stdout and stderr)."""
    client = _client(address, token_file)
    if follow:
        _follow(client, job_id)
    else:
        click.echo(_calling(client.get_job_logs, job_id), nl=False)


@job.command()
@_address
@_token_file
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for the job to end.")
@click.argument("job_id")
def stop(address: str | None, token_file: str | None, no_wait: bool, job_id: str) -> None:
    """Stop the job: SIGTERM to its processes, SIGKILL if they linger."""
    client = _client(address, token_file)
    if not _calling(client.stop_job, job_id):
        click.echo(f"Job '{job_id}' had already finished")
        return
    click.echo(f"Stopping job '{job_id}'")
    while not no_wait and not _calling(client.get_job_status, job_id).is_terminal():
        time.sleep(STOP_POLL)
    if not no_wait:
        _report(client, job_id)


@job.command()
@_address
@_token_file
@click.argument("job_id")
def delete(address: str | None, token_file: str | None, job_id: str) -> None:
    """Forget a finished job (its record and logs)."""
    client = _client(address, token_file)
    _calling(client.delete_job, job_id)
    click.echo(f"Job '{job_id}' deleted successfully")


@job.command(name="list")
@_address
@_token_file
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as a JSON array.")
def list_(address: str | None, token_file: str | None, as_json: bool) -> None:
    """List every job of the cluster."""
    import msgspec

    jobs = _calling(_client(address, token_file).list_jobs)
    if as_json:
        click.echo(msgspec.json.encode(jobs).decode())
    else:
        click.echo(render_jobs(jobs))


def _follow(client: Any, job_id: str) -> None:
    import trio

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            click.echo(chunk, nl=False)

    try:
        _calling(trio.run, tail)
    except KeyboardInterrupt:
        click.echo(f"\nStopped following; the job keeps running (stop it with: actorlib job stop {job_id})", err=True)
        sys.exit(130)


def _report(client: Any, job_id: str) -> int:
    """Print the job's status as Ray's CLI does; return the exit code it deserves."""
    info = _calling(client.get_job_info, job_id)
    status = info.status.value
    if status == "SUCCEEDED":
        click.echo(f"Job '{job_id}' succeeded")
    elif status == "STOPPED":
        click.echo(f"Job '{job_id}' was stopped")
    elif status == "FAILED":
        click.echo(f"Job '{job_id}' failed")
        click.echo(f"Status message: {info.message}")
    else:
        click.echo(f"Status for job '{job_id}': {status}")
        click.echo(f"Status message: {info.message}")
    return 0 if status in ("SUCCEEDED", "PENDING", "RUNNING") else 1


def render_jobs(jobs: list[Any]) -> str:
    """A table of jobs, newest last (pure)."""
    if not jobs:
        return "No jobs."
    rows = [("SUBMISSION ID", "STATUS", "STARTED", "ENTRYPOINT")]
    for job in jobs:
        started = datetime.datetime.fromtimestamp(job.start_time / 1000).strftime("%Y-%m-%d %H:%M:%S") if job.start_time else "-"
        entry = job.entrypoint if len(job.entrypoint) <= 60 else job.entrypoint[:57] + "..."
        rows.append((job.submission_id or job.job_id or "-", job.status.value, started, entry))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows)
