"""``actorlib chaos``: kill (or freeze) random processes of a running cluster, at an interval."""

from __future__ import annotations

import click
import msgspec

from ..testing.chaos import KINDS, Chaos, Injection
from ._query import address_option


@click.command()
@address_option
@click.option("--kill", "kind", type=click.Choice(KINDS), required=True, help="What to hit: task workers, actor processes, worker nodes, or the head.")
@click.option("--interval", type=click.FloatRange(min=0), default=1.0, show_default=True, help="Seconds between two injections.")
@click.option("--max", "max_", type=click.IntRange(min=1), help="Stop after this many injections.")
@click.option("--duration", type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--freeze", type=click.FloatRange(min=0, min_open=True), help="Freeze (SIGSTOP) for this many seconds, then resume (SIGCONT), instead of SIGKILL.")
@click.option("--seed", type=int, help="Seed for the choice of targets (repeatable runs).")
@click.option("--json", "as_json", is_flag=True, help="Print only the report, as JSON, at the end.")
def chaos(
    address: str, kind: str, interval: float, max_: int | None, duration: float | None, freeze: float | None,
    seed: int | None, as_json: bool,
) -> None:  # fmt: skip
    """Inject faults into a running cluster: SIGKILL (or freeze) one random
    process of a kind every INTERVAL seconds, until --max, --duration or Ctrl-C.

    Only the cluster's own processes on this machine are hit: the head lists them
    (nodes, task workers, actor processes). Leased task workers go first. A node is
    frozen alone (its workers keep running), as a hung node daemon would be; frozen
    processes are resumed on exit, Ctrl-C included.
    """

    def say(injection: Injection) -> None:
        verb = f"froze for {freeze:g}s" if freeze else "killed"
        what = injection.name if injection.kind != "actors" else f"actor {injection.name} {injection.actor_id}"
        click.echo(f"{verb} {what} pid {injection.pid} on node {injection.node_id[:12]} ({injection.node_ip})")

    injector = Chaos(
        kind, interval=interval, max=max_, duration=duration, freeze=freeze, address=address, seed=seed,
        on_injection=None if as_json else say,
    )  # fmt: skip
    try:
        report = injector.run()
    except KeyboardInterrupt:
        report = injector.stop()
    if as_json:
        click.echo(msgspec.json.encode(report).decode())
        return
    click.echo(f"{report.count} {'freezes' if freeze else 'kills'}; {report.misses} times nothing to hit")
    for error in report.errors:
        click.echo(f"listing failed: {error}", err=True)
