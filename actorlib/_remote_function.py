"""``@remote`` on functions: RemoteFunction and its ``.remote()`` / ``.options()``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

from . import _ids
from ._core import ObjectRef, Runtime, TaskSpec, current, pack
from ._core._submitter import TaskKind
from ._core._streams import open_stream
from ._core._packages import env_for
from ._options import GENERATOR_RETURNS, TASK_DEFAULTS, merge, placement_of, shape_of, strategy_of, validate_task_options
from ._runtime_env import check_runtime_env
from ._placement import caller_group, group_shape
from ._serial import Exported, export

P = ParamSpec("P")
R = TypeVar("R")


class _Prepared:
    """Everything about a function and its options that does not change per call."""

    __slots__ = (
        "runtime", "exported", "name", "shape", "env", "num_returns", "streaming", "dynamic", "max_retries",
        "retry_exceptions", "strategy", "group", "capture", "caller", "kind",
    )  # fmt: skip

    def __init__(self, runtime: Runtime, exported: Exported, options: dict[str, Any], caller: tuple[bytes, bool]) -> None:
        self.runtime = runtime
        self.exported = exported
        self.caller = caller  # the placement group context it was prepared in
        self.name = options.get("name") or exported.name
        self.shape = shape_of(options)
        self.group, self.capture = placement_of(options, caller)
        if self.group is not None:  # ask the group's bundle for it instead
            self.shape = group_shape(self.shape, self.group[0].hex(), self.group[1])
        # The job's environment, then this function's: env_vars merge key by key, and its own
        # working_dir / py_modules (package URIs in the environment) replace the job's.
        self.env = {**runtime.identity.env, **env_for(runtime, check_runtime_env(options.get("runtime_env"), where="remote function"))}
        self.num_returns = options.get("num_returns", 1)
        self.streaming = self.num_returns in GENERATOR_RETURNS  # "dynamic": streamed, and one ref to them all
        self.dynamic = self.num_returns == "dynamic"
        self.max_retries = options.get("max_retries", 3)
        self.retry_exceptions = options.get("retry_exceptions", False)
        self.strategy = strategy_of(options)
        self.kind = TaskKind(
            fn=exported, name=self.name, shape=self.shape, env=self.env, max_retries=self.max_retries,
            retry_exceptions=self.retry_exceptions, streaming=self.streaming, strategy=self.strategy,
            group=self.group, capture=self.capture, num_returns=1 if self.streaming else self.num_returns,
        )  # fmt: skip


class RemoteFunction(Generic[P, R]):
    """A function that runs as a task: call ``f.remote(...)`` for an ObjectRef to its result."""

    def __init__(self, fn: Callable[P, R], options: dict[str, Any]) -> None:
        self._fn = fn
        self._options = {**TASK_DEFAULTS, **options}
        if "num_returns" not in options and is_generator_function(fn):
            self._options["num_returns"] = "streaming"  # as in Ray 2.x: generators stream by default
        self._exported: Exported | None = None
        self._prepared: _Prepared | None = None
        functools.update_wrapper(self, fn)

    def __reduce__(self) -> Any:
        # Tasks may use other remote functions: pickle the function and its
        # options, never the per-process caches.
        return (RemoteFunction, (self._fn, self._options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = getattr(self._fn, "__name__", "function")
        raise TypeError(f"remote functions cannot be called directly; use {name}.remote() instead")

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Submit a task; return an ObjectRef (a list of them for num_returns > 1, None for 0). Never blocks."""
        return _submit(self._prepare(self._options), args, kwargs)

    def options(self, **options: Any) -> _BoundFunction[P, R]:
        """This function with some options overridden for the calls made through the result."""
        return _BoundFunction(self, merge(self._options, validate_task_options(options)))

    def _prepare(self, options: dict[str, Any]) -> _Prepared:
        runtime = current()
        caller = caller_group(runtime)
        prepared = self._prepared
        if options is self._options and prepared is not None and prepared.runtime is runtime and prepared.caller == caller:
            return prepared
        if self._exported is None:
            name = getattr(self._fn, "__qualname__", getattr(self._fn, "__name__", "function"))
            self._exported = export(self._fn, name)
        prepared = _Prepared(runtime, self._exported, options, caller)
        if options is self._options:
            self._prepared = prepared
        return prepared


class _BoundFunction(Generic[P, R]):
    """A RemoteFunction with ``.options(...)`` applied."""

    def __init__(self, function: RemoteFunction[P, R], options: dict[str, Any]) -> None:
        self._function = function
        self._options = options

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return _submit(self._function._prepare(self._options), args, kwargs)

    def options(self, **options: Any) -> _BoundFunction[P, R]:
        return _BoundFunction(self._function, merge(self._options, validate_task_options(options)))


def _submit(prepared: _Prepared, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    runtime = prepared.runtime
    nested: list[ObjectRef] = []
    arguments, deps = pack(runtime, prepared.name, args, kwargs, nested)
    task_id = _ids.task_id()
    streaming = prepared.streaming
    return_ids = () if streaming else tuple(_ids.return_id(task_id, i) for i in range(prepared.num_returns))
    owner = runtime.identity.address
    refs = []
    for object_id in return_ids:
        runtime.objects.add(object_id, owned=True, owner=owner)
        refs.append(ObjectRef(object_id, owner, runtime, counted=True))
    if streaming:
        generator = open_stream(runtime, task_id, prepared.dynamic)
    runtime.submit(TaskSpec(task_id=task_id, kind=prepared.kind, args=arguments, deps=deps, return_ids=return_ids, nested=nested))
    if streaming:
        return generator
    if prepared.num_returns == 1:
        return refs[0]
    return refs or None


def is_generator_function(fn: Any) -> bool:
    """A ``def`` with ``yield`` or an ``async def`` with ``yield``: Ray streams its results."""
    return inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn)


def remote(*args: Any, **options: Any) -> Any:
    """Make a function a remote function, or a class an actor class.

    ``@remote`` or ``@remote(num_cpus=2, ...)``; options are checked here.
    """
    if len(args) == 1 and not options and callable(args[0]):
        return _make(args[0], {}, checked=True)
    if args:
        raise TypeError("@remote takes keyword options only, e.g. @actorlib.remote(num_cpus=2)")
    return lambda target: _make(target, options, checked=False)


def _make(target: Any, options: dict[str, Any], *, checked: bool) -> Any:
    from ._actor_class import ActorClass
    from ._options import validate_actor_options

    if isinstance(target, type):
        return ActorClass(target, options if checked else validate_actor_options(options))
    return RemoteFunction(target, options if checked else validate_task_options(options))
