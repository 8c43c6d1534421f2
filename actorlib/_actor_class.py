"""``@remote`` on classes: ActorClass, ActorHandle, ActorMethod, ``@method``, ``get_actor``, ``kill``."""

from __future__ import annotations

import inspect
from typing import Any

from . import _ids
from ._core import ObjectRef, Runtime, current, pack
from ._core._actors import CallSpec
from ._core._streams import open_stream
from ._event_loops import EXPLICIT, LOOPS, loop_of
from ._core._packages import env_for
from ._options import GENERATOR_RETURNS, ACTOR_DEFAULTS, actor_shapes, check_num_returns, merge, placement_of, strategy_of, validate_actor_options
from ._runtime_env import check_runtime_env
from ._placement import caller_group, group_shape
from ._remote_function import is_generator_function
from ._serial import Exported, export
from ._supervision import current_group
from ._wire import TERMINATE, ActorSpec, GetNamedActor, ListActors, MethodInfo

_METHOD_ATTR = "__actorlib_method__"


def method(*, num_returns: int | str = 1, concurrency_group: str | None = None) -> Any:
    """Options for one actor method: ``@actorlib.method(num_returns=2)``.

    ``num_returns="streaming"`` makes a generator method return an
    ObjectRefGenerator (``"dynamic"``, deprecated as in Ray: one ref to a
    DynamicObjectRefGenerator of them all, once the generator ends); ``concurrency_group`` names one of the actor's
    ``concurrency_groups``.
    """
    check_num_returns(num_returns)

    def decorate(fn: Any) -> Any:
        setattr(fn, _METHOD_ATTR, {"num_returns": num_returns, "concurrency_group": concurrency_group or ""})
        return fn

    return decorate


def methods_of(cls: type) -> dict[str, MethodInfo]:
    """The callable methods of an actor class and how each is called."""
    found: dict[str, MethodInfo] = {}
    for name, member in inspect.getmembers(cls, callable):
        if name.startswith("__") and name != "__call__":
            continue
        options = getattr(member, _METHOD_ATTR, {})
        default = "streaming" if is_generator_function(member) else 1  # as in Ray 2.x
        num_returns = options.get("num_returns", default)
        streaming = num_returns in GENERATOR_RETURNS
        found[name] = MethodInfo(
            num_returns=1 if streaming else num_returns, streaming=streaming, group=options.get("concurrency_group", ""),
            dynamic=num_returns == "dynamic",
        )
    return found


def event_loop_of(cls: type) -> str:
    """How an actor runs its methods: ``sync``, or the event loop of its ``async def`` methods.

    ``__actorlib_event_loop__ = "trio" | "asyncio"`` on the class decides.
    Otherwise: no async methods → sync; else as :func:`actorlib._event_loops.loop_of`
    (the methods' code names trio or asyncio, else the module's imports, else asyncio).
    """
    explicit = getattr(cls, EXPLICIT, None)
    coroutines = [
        member
        for _, member in inspect.getmembers(cls, inspect.isfunction)
        if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
    ]
    if not coroutines and explicit not in LOOPS:
        return "sync"
    return loop_of(coroutines, cls.__module__, explicit)


class ActorClass:
    """A class whose instances are actors: ``Cls.remote(...)`` creates one and returns its handle."""

    def __init__(self, cls: type, options: dict[str, Any]) -> None:
        self._cls = cls
        self._options = {**ACTOR_DEFAULTS, **options}
        self._exported: Exported | None = None
        self._methods = methods_of(cls)
        self._loop = event_loop_of(cls)
        self.__name__ = cls.__name__
        self.__qualname__ = cls.__qualname__
        self.__doc__ = cls.__doc__
        self.__module__ = cls.__module__

    def __reduce__(self) -> Any:
        return (ActorClass, (self._cls, self._options))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = self._cls.__name__
        raise TypeError(f"actors cannot be instantiated directly; use {name}.remote() instead of {name}()")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        name = self._cls.__name__
        raise TypeError(
            f"cannot subclass the actor class {name} (as in Ray): subclass the plain class and make the "
            f"subclass an actor, e.g. keep {name} undecorated and write actorlib.remote({name}) where you need it"
        )

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        """Create an actor; return its handle at once (its __init__ runs in its own process)."""
        return self._create(self._options, args, kwargs)

    def options(self, **options: Any) -> _BoundActorClass:
        return _BoundActorClass(self, merge(self._options, validate_actor_options(options)))

    def _create(self, options: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> ActorHandle:
        runtime = current()
        if self._exported is None:
            self._exported = export(self._cls, self._cls.__qualname__)
        spec, deps = self._spec(runtime, options, args, kwargs)
        if spec.name or options.get("get_if_exists"):
            view = runtime.call(_register_now, runtime, spec, deps, bool(options.get("get_if_exists")))
            if view is not None:  # get_if_exists found one
                return ActorHandle(view.actor_id, view.class_name, view.methods, view.max_task_retries, runtime)
        else:
            # Counted here, on the caller's thread, before the handle exists: a handle dropped at
            # once must find the creator's count to drop (not a placeholder the runtime forgets).
            runtime.actors.created_locally(spec)
            runtime.soon(runtime.actors.create, spec, deps)
        return ActorHandle(spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries, runtime, counted=True)

    def _spec(self, runtime: Runtime, options: dict[str, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[ActorSpec, list[ObjectRef]]:
        assert self._exported is not None
        name = self._cls.__qualname__
        arguments, deps = pack(runtime, f"{name}.__init__", args, kwargs)
        ident = runtime.identity
        placement, shape = actor_shapes(options)
        loop = self._loop
        concurrency = options.get("max_concurrency") or (1000 if loop != "sync" else 1)
        env = {**ident.env, **env_for(runtime, check_runtime_env(options.get("runtime_env"), where="actor"))}
        group = options.get("supervisor") or current_group()
        strategy, affinity, soft = strategy_of(options)
        bundle, capture = placement_of(options, caller_group(runtime))
        if bundle is not None:  # in a bundle: what it holds is what places it (the bundle is reserved)
            placement = shape = group_shape(shape, bundle[0].hex(), bundle[1])
        spec = ActorSpec(
            actor_id=_ids.unique_id(),
            class_name=self._cls.__name__,
            class_id=self._exported.fn_id,
            class_blob=self._exported.blob,
            args=arguments,
            resolved=[],
            methods=self._methods,
            name=options.get("name") or "",
            namespace=options.get("namespace") or ident.namespace,
            detached=options.get("lifetime") == "detached",
            max_restarts=options.get("max_restarts", 0),
            max_task_retries=options.get("max_task_retries", 0),
            max_concurrency=concurrency,
            concurrency_groups=dict(options.get("concurrency_groups") or {}),
            loop=loop,
            shape=shape,
            placement=placement,
            env=env,
            owner_id=ident.core_id,
            job_id=ident.job_id,
            group=group.spec if group is not None else None,
            strategy=strategy,
            node_affinity=affinity,
            soft=soft,
            placement_group=bundle[0] if bundle is not None else b"",
            bundle_index=bundle[1] if bundle is not None else -1,
            capture_child_tasks=capture,
            job_namespace=ident.namespace,
        )
        return spec, deps


class _BoundActorClass:
    """An ActorClass with ``.options(...)`` applied."""

    def __init__(self, actor_class: ActorClass, options: dict[str, Any]) -> None:
        self._class = actor_class
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> ActorHandle:
        return self._class._create(self._options, args, kwargs)

    def options(self, **options: Any) -> _BoundActorClass:
        return _BoundActorClass(self._class, merge(self._options, validate_actor_options(options)))


async def _register_now(runtime: Runtime, spec: ActorSpec, deps: list[ObjectRef], get_if_exists: bool) -> Any:
    runtime.actors.created_locally(spec)
    for ref in deps:
        await ref  # constructor arguments first
    view = await runtime.actors.register(spec, deps, get_if_exists)
    if view is not None:
        runtime.actors.forget(spec.actor_id)
    return view


class ActorHandle:
    """A handle to an actor: ``handle.method.remote(...)`` calls it. Handles can be passed
    to tasks and other actors, and used there."""

    __slots__ = ("_actor_id", "_class_name", "_methods", "_retries", "_runtime", "__weakref__")

    def __init__(
        self, actor_id: bytes, class_name: str, methods: dict[str, MethodInfo], retries: int, runtime: Runtime,
        *, counted: bool = False,
    ) -> None:  # fmt: skip
        self._actor_id = actor_id
        self._class_name = class_name
        self._methods = methods
        self._retries = retries
        self._runtime = runtime
        if not counted:
            runtime.actors.handle_ref(actor_id, 1, class_name, retries)

    def __del__(self) -> None:
        try:
            self._runtime.actors.handle_ref(self._actor_id, -1)
        except Exception:
            pass

    def __getattr__(self, name: str) -> ActorMethod:
        if name == TERMINATE:  # every actor has it: exit for good once the calls before it ran
            return ActorMethod(self, name, MethodInfo())
        if name.startswith("_"):
            raise AttributeError(name)
        info = self._methods.get(name)
        if info is None:
            raise AttributeError(f"'{self._class_name}' actor has no method '{name}'")
        return ActorMethod(self, name, info)

    def __reduce__(self) -> Any:
        self._runtime.actors.handle_ref(self._actor_id, 0, escaped=True)
        return (_rebuild_handle, (self._actor_id, self._class_name, self._methods, self._retries))

    def __repr__(self) -> str:
        return f"Actor({self._class_name}, {self._actor_id.hex()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorHandle) and other._actor_id == self._actor_id

    def __hash__(self) -> int:
        return hash(self._actor_id)


def _rebuild_handle(actor_id: bytes, class_name: str, methods: dict[str, MethodInfo], retries: int) -> ActorHandle:
    return ActorHandle(actor_id, class_name, methods, retries, current())


class ActorMethod:
    """``handle.method``: call ``.remote(...)`` for an ObjectRef to its result."""

    __slots__ = ("_handle", "_name", "_info")

    def __init__(self, handle: ActorHandle, name: str, info: MethodInfo) -> None:
        self._handle = handle
        self._name = name
        self._info = info

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"actor methods cannot be called directly; use .{self._name}.remote() instead")

    def options(self, *, num_returns: int | str | None = None, **ignored: Any) -> ActorMethod:
        if num_returns is None:
            return self
        check_num_returns(num_returns)
        streaming = num_returns in GENERATOR_RETURNS
        info = MethodInfo(
            num_returns=1 if streaming else int(num_returns), streaming=streaming, group=self._info.group,
            dynamic=num_returns == "dynamic",
        )
        return ActorMethod(self._handle, self._name, info)

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Queue the call; return an ObjectRef (a list for num_returns > 1, a generator for streaming)."""
        handle = self._handle
        runtime = handle._runtime if not handle._runtime.closed else current()
        name = f"{handle._class_name}.{self._name}"
        nested: list[ObjectRef] = []
        arguments, deps = pack(runtime, name, args, kwargs, nested)
        call_id = _ids.task_id()
        info = self._info
        return_ids = [] if info.streaming else [_ids.return_id(call_id, i) for i in range(info.num_returns)]
        owner = runtime.identity.address
        refs = []
        for object_id in return_ids:
            runtime.objects.add(object_id, owned=True, owner=owner)
            refs.append(ObjectRef(object_id, owner, runtime, counted=True))
        if info.streaming:
            generator = open_stream(runtime, call_id, info.dynamic)
        call = CallSpec(
            call_id=call_id, actor_id=handle._actor_id, method=self._name, name=name, args=arguments,
            deps=deps, return_ids=return_ids, streaming=info.streaming, nested=nested, parent=runtime.running_task(),
        )  # fmt: skip
        if not runtime.actors.send_now(call):
            runtime.submit(call)
        if info.streaming:
            return generator
        if info.num_returns == 1:
            return refs[0]
        return refs or None


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """A handle to the live actor named ``name`` (in ``namespace``, default: this job's).

    Raises ValueError if there is none.
    """
    runtime = current()
    namespace = runtime.identity.namespace if namespace is None else namespace
    reply = runtime.call(runtime.head.request, lambda req: GetNamedActor(req=req, name=name, namespace=namespace))
    view = reply.view
    if view is None:
        raise ValueError(f"no live actor named {name!r} in namespace {namespace!r}")
    return ActorHandle(view.actor_id, view.class_name, view.methods, view.max_task_retries, runtime)


def list_named_actors(all_namespaces: bool = False) -> list[str] | list[dict[str, str]]:
    """The names of the live named actors in this job's namespace (Ray's ``ray.util.list_named_actors``).

    With ``all_namespaces=True``: ``{"name": ..., "namespace": ...}`` for every namespace.
    """
    runtime = current()
    namespace = runtime.identity.namespace
    reply = runtime.call(runtime.head.request, lambda req: ListActors(req=req))
    live = [view for view in reply.actors if view.name and view.state != "DEAD"]
    if all_namespaces:
        return [{"name": view.name, "namespace": view.namespace} for view in live]
    return [view.name for view in live if view.namespace == namespace]


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill an actor. Its pending and running calls fail with ActorDiedError.

    With ``no_restart=False`` it is restarted per its ``max_restarts`` instead.
    """
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"kill() takes an actor handle, got {type(actor).__name__}")
    runtime = current()
    runtime.call(runtime.actors.kill, actor._actor_id, no_restart)

