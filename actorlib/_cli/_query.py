"""What the state commands share: the --address option, errors as clean messages, output."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console

from ..util import state

T = TypeVar("T")

address_option = click.option(
    "--address", envvar="ACTORLIB_ADDRESS", default="auto", show_default=True, help="The head's address."
)


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a state API call; its failures become one-line click errors (exit status 1)."""
    try:
        return fn(*args, **kwargs)
    except state.QueryError as exc:
        raise click.UsageError(str(exc)) from None
    except (ConnectionError, OSError, TimeoutError, state.StateApiError) as exc:
        raise click.ClickException(str(exc)) from None


def fetch(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call``, with a transient spinner saying ``what`` while it waits, only on a terminal."""
    if not sys.stdout.isatty():
        return call(fn, *args, **kwargs)
    with Console().status(what, spinner="dots"):
        return call(fn, *args, **kwargs)


def console() -> Console:
    """stdout; no colours, no wrapping and no width limit unless it is a terminal."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=10_000, no_color=True, soft_wrap=True, highlight=False)


def echo_json(value: Any) -> None:
    click.echo(msgspec.json.encode(value).decode())
