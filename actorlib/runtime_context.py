"""The runtime context, under Ray's module name (``ray.runtime_context``)."""

from ._context import RuntimeContext, get_runtime_context

__all__ = ["RuntimeContext", "get_runtime_context"]
