"""Which event loop runs a piece of async code: Trio, or asyncio as Ray's users expect.

A coroutine does not say which library it needs until it awaits something, so the
choice is made from the code (docs/decisions/0006-actor-event-loops.md), for an actor
class and for an ``async def`` remote function alike.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

LOOPS = ("trio", "asyncio")
EXPLICIT = "__actorlib_event_loop__"  # set on a class or function to choose


def loop_of(functions: Iterable[Callable[..., Any]], module_name: str, explicit: Any = None) -> str:
    """``trio`` or ``asyncio`` for async ``functions`` defined in ``module_name``.

    ``explicit`` decides if it is one of them. Otherwise: their code names ``trio``
    → trio, ``asyncio`` → asyncio; else their module imports trio and not asyncio →
    trio; else asyncio, as in Ray.
    """
    if explicit in LOOPS:
        return str(explicit)
    names: set[str] = set()
    for function in functions:
        code = getattr(function, "__code__", None)
        if code is not None:
            _code_names(code, names)
    if "trio" in names:
        return "trio"
    if "asyncio" in names:
        return "asyncio"
    module = vars(sys.modules.get(module_name, types.ModuleType("_")))
    imported = {value.__name__ for value in module.values() if isinstance(value, types.ModuleType)}
    return "trio" if "trio" in imported and "asyncio" not in imported else "asyncio"


def _code_names(code: types.CodeType, names: set[str]) -> None:
    names.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_names(const, names)
