"""Process titles, as ``ps`` shows them: ``actorlib::head``, ``actorlib::IDLE``, ``actorlib::square``.

Like Ray's ``ray::IDLE`` / ``ray::Counter``, so an operator can tell the head from an
actor at a glance. A title never holds a token or a config blob: it replaces the
command line (which carried the node's config JSON). The environment block is left
alone (``SPT_NOENV``), so ``/proc/<pid>/environ`` still shows what the process started with.
"""

from __future__ import annotations

import os
from collections.abc import Callable

PREFIX = "actorlib::"

_title = ""
_set: Callable[[str], None] | None = None


def set_title(role: str) -> None:
    """Show ``actorlib::<role>`` in ``ps``; a no-op if it already does (cheap enough per task).

    ``role`` may be anything a user named a task: a NUL or a lone surrogate (which
    setproctitle refuses with ValueError / UnicodeEncodeError, and which once killed the
    worker) is shown escaped instead.
    """
    global _title
    title = printable(PREFIX + role)
    if title != _title:
        _title = title
        (_set or _setter())(title)


def printable(title: str) -> str:
    """``title`` as a process title can hold it: no NUL, valid UTF-8."""
    return title.replace("\0", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")


def _setter() -> Callable[[str], None]:
    global _set
    try:
        os.environ["SPT_NOENV"] = "1"  # read by setproctitle's first call: keep the environ block
        import setproctitle

        setproctitle.setproctitle(_title)
        _set = setproctitle.setproctitle
    except ImportError:  # a title is a courtesy, never a reason to fail
        _set = lambda title: None  # noqa: E731
    finally:
        os.environ.pop("SPT_NOENV", None)
    return lambda title: None


def is_actorlib_title(args: list[str]) -> bool:
    """Whether a process's command line is one of ours (titled, or still starting up)."""
    return any(arg.startswith((PREFIX, "actorlib._")) for arg in args)
