"""Task arguments: top-level ObjectRefs become placeholders, resolved to values before the call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._serial import INLINE_THRESHOLD, deserialize, serialize
from .._wire import Inline
from ._refs import ObjectRef

if TYPE_CHECKING:
    from ._runtime import Runtime


class Placeholder:
    """Stands for the value of the ``index``-th top-level ObjectRef argument."""

    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index

    def __reduce__(self) -> Any:
        return (Placeholder, (self.index,))


def pack(
    runtime: Runtime, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], nested: list[ObjectRef] | None = None
) -> tuple[Inline, list[ObjectRef]]:
    """Serialize a call's arguments; return them and the refs they depend on.

    Large top-level arguments are put in the object store first, so the
    call message stays small. Refs nested inside arguments are passed as
    refs: appended to ``nested`` when given (the caller holds them until the
    callee is counted as their borrower), else pinned by their owner.
    """
    if not args and not kwargs:
        return _NO_ARGUMENTS, NO_DEPS
    deps: list[ObjectRef] = []

    def swap(value: Any) -> Any:
        if isinstance(value, ObjectRef):
            deps.append(value)
            return Placeholder(len(deps) - 1)
        return value

    call = ([swap(a) for a in args], {k: swap(v) for k, v in kwargs.items()})
    serialized = serialize(call, what=f"the arguments of {name}()")
    if not serialized.inline:
        call = _spill_large(runtime, name, call, deps)
        serialized = serialize(call, what=f"the arguments of {name}()")
    if serialized.refs:
        if nested is None:
            runtime.objects.mark_escaped([ref.binary() for ref in serialized.refs])
        else:  # the caller holds them until the callee has told their owners it borrows them
            nested.extend(serialized.refs)
    return serialized.to_inline(), deps or NO_DEPS


NO_DEPS: list[ObjectRef] = []  # shared (never appended to): 100,000 queued tasks need not own one each
_NO_ARGUMENTS = serialize(([], {})).to_inline()


def _spill_large(runtime: Runtime, name: str, call: Any, deps: list[ObjectRef]) -> Any:
    args, kwargs = call

    def spill(value: Any, what: str) -> Any:
        if isinstance(value, Placeholder):
            return value
        if serialize(value, what=what).size <= INLINE_THRESHOLD // 4:
            return value
        deps.append(runtime.put(value))
        return Placeholder(len(deps) - 1)

    return (
        [spill(a, f"argument {i} of {name}()") for i, a in enumerate(args)],
        {k: spill(v, f"argument {k!r} of {name}()") for k, v in kwargs.items()},
    )


def unpack(args: Inline, values: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """Rebuild ``(args, kwargs)`` with each placeholder replaced by its resolved value."""
    positional, keywords = deserialize(args.data, args.buffers)
    if values:
        positional = [values[a.index] if type(a) is Placeholder else a for a in positional]
        keywords = {k: values[v.index] if type(v) is Placeholder else v for k, v in keywords.items()}
    return positional, keywords
