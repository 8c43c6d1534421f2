"""cloudpickle, except that functions pickled by value keep their source file name.

cloudpickle (3.1) renames the file of every code object it pickles by value
to ``<dynamic-code>``, so a task's remote traceback would show neither the
file nor the source lines of the user's function. Keeping the real name lets
``traceback`` find the source wherever the file exists (always, on one machine).
"""

from __future__ import annotations

import io
import types
from collections import ChainMap
from collections.abc import Callable
from typing import Any

import cloudpickle
from cloudpickle import cloudpickle as _cp

_DYNAMIC = "<dynamic-code>"


def _code_reduce(code: types.CodeType) -> Any:
    constructor, args = _cp._code_reduce(code)
    return constructor, tuple(code.co_filename if arg == _DYNAMIC else arg for arg in args)


# Reducers registered in this process (``actorlib.util.register_serializer``), by exact type.
custom_reducers: dict[type, Callable[[Any], Any]] = {}


class Pickler(cloudpickle.Pickler):
    """cloudpickle's Pickler with the code reducer above and this process's custom reducers."""

    dispatch_table = ChainMap(custom_reducers, {types.CodeType: _code_reduce}, cloudpickle.Pickler.dispatch_table)


def dumps(obj: Any, buffer_callback: Callable[[Any], Any] | None = None) -> bytes:
    """Pickle ``obj`` with protocol 5 (out-of-band buffers go to ``buffer_callback``)."""
    with io.BytesIO() as file:
        Pickler(file, protocol=5, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
