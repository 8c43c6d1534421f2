"""``actorlib tree``: the whole cluster as one supervision tree, once or live (``--watch``)."""

from __future__ import annotations

import contextlib
import functools
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click
import msgspec
from rich.console import Group
from rich.live import Live
from rich.text import Text

from ..util import state
from ..util.state import ClusterTree, sort, unhealthy
from ._query import address_option, call, console, echo_json, fetch
from ._render import tree_renderable

SORT_KEYS = ("cpu", "mem", "restarts", "uptime", "id")
MIN_INTERVAL = 1.0
KEYS = {"c": "cpu", "m": "mem", "r": "restarts", "u": "uptime", "i": "id"}


@click.command()
@address_option
@click.option("--node", "node", help="Only the node whose id starts with this.")
@click.option("--depth", type=click.IntRange(min=0), help="Levels of each node's tree to show.")
@click.option("--sort", type=click.Choice(SORT_KEYS), help="Order each supervisor's children (busiest first).")
@click.option("--errors", is_flag=True, help="Only the subtrees with trouble: not running, restarted, or exited abnormally.")
@click.option("--json", "as_json", is_flag=True, help="Print the tree as JSON (actorlib.util.state.ClusterTree).")
@click.option("--watch", is_flag=True, help="A live full-screen view, refreshed in place (q or Ctrl-C to leave).")
@click.option("--interval", type=float, default=2.0, show_default=True, help="Seconds between refreshes with --watch (at least 1).")
def tree(
    address: str, node: str | None, depth: int | None, sort: str | None, errors: bool, as_json: bool, watch: bool,
    interval: float,
) -> None:  # fmt: skip
    """Show every node's supervision tree: supervisors, workers, actors, groups.

    Per supervisor: strategy and restarts used of its budget. Per child: pid,
    state, restarts, uptime, CPU %, RSS, resources, actor class and name, job,
    the task it runs, and its last exit. Large pools show the busiest children
    and say how many were left out.
    """
    if watch and as_json:
        raise click.UsageError("--watch and --json do not go together")

    def get(order: str | None, ask: Any = call) -> ClusterTree:
        result = ask(state.get_tree, address, node, depth)
        if errors:
            result = only_unhealthy(result)
        return sorted_tree(result, order) if order else result

    once = functools.partial(fetch, "asking every node…")  # a spinner, on a terminal only
    if watch:
        _watch(get, sort or "cpu", max(MIN_INTERVAL, interval))
    elif as_json:
        echo_json(get(sort, once))
    else:
        console().print(tree_renderable(get(sort, once)))


def only_unhealthy(result: ClusterTree) -> ClusterTree:
    """Each node's tree cut to its troubled subtrees (a node with none keeps no tree)."""
    nodes = [msgspec.structs.replace(n, root=unhealthy(n.root)) if n.root is not None else n for n in result.nodes]
    return msgspec.structs.replace(result, nodes=nodes)


def sorted_tree(result: ClusterTree, key: str) -> ClusterTree:
    nodes = [msgspec.structs.replace(n, root=sort(n.root, key)) if n.root is not None else n for n in result.nodes]
    return msgspec.structs.replace(result, nodes=nodes)


def _watch(fetch: object, sort: str, interval: float) -> None:
    """Refresh in place on the alternate screen until q or Ctrl-C; the terminal is restored either way."""
    out = console()
    wake = threading.Event()
    current = [sort]
    quit_ = threading.Event()
    with _keys(current, wake, quit_), Live(console=out, screen=True, auto_refresh=False) as live:
        try:
            while not quit_.is_set():
                try:
                    view = tree_renderable(fetch(current[0]))  # type: ignore[operator]
                except click.ClickException as exc:
                    view = Text(f"error: {exc.format_message()}", style="red")
                footer = Text(f"sorted by {current[0]} · every {interval:g}s · keys: c cpu, m mem, r restarts, u uptime, i id, q quit", style="dim")
                live.update(Group(view, footer), refresh=True)
                wake.wait(interval)
                wake.clear()
        except KeyboardInterrupt:
            pass


@contextlib.contextmanager
def _keys(current: list[str], wake: threading.Event, quit_: threading.Event) -> Iterator[None]:
    """Read single keys from a terminal stdin (cbreak mode, restored on exit) in a daemon thread."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def read() -> None:
        import os
        import select

        while not quit_.is_set():
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            key = os.read(fd, 1).decode(errors="ignore").lower()
            if key == "q":
                quit_.set()
            elif key in KEYS:
                current[0] = KEYS[key]
            else:
                continue
            wake.set()

    reader = threading.Thread(target=read, name="actorlib-keys", daemon=True)
    reader.start()
    try:
        yield
    finally:
        quit_.set()
        reader.join()
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
