"""actorlib: a distributed actor runtime for Python on Trio, with Ray Core's API.

``import actorlib as ray`` runs Ray Core programs wherever the feature exists.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import exceptions, util
    from ._actor_class import ActorClass, ActorHandle, ActorMethod, get_actor, kill, method
    from ._api import (
        available_resources,
        cancel,
        cluster_resources,
        get,
        is_initialized,
        nodes,
        put,
        shutdown,
        wait,
    )
    from ._context import RuntimeContext, get_gpu_ids, get_runtime_context
    from ._init import init
    from ._core import ObjectRef
    from ._core._streams import DynamicObjectRefGenerator, ObjectRefGenerator
    from ._remote_function import RemoteFunction, remote
    from ._supervision import SupervisionGroup, supervisor
    from ._timeline import timeline
    from . import actor, remote_function, runtime_context, runtime_env

# The public names, imported on first use: the head, node and worker processes import
# ``actorlib._head`` etc., and need not pay for the driver's API (cloudpickle and all).
# Public submodules resolve the same way, as ``import ray`` makes ``ray.util`` reachable.
_SUBMODULES = {
    "exceptions", "util", "job_submission", "testing", "autoscaler", "actor", "runtime_context", "remote_function", "runtime_env",
}  # fmt: skip
_HOMES = {
    "available_resources": "._api", "cancel": "._api", "cluster_resources": "._api", "get": "._api",
    "init": "._init", "is_initialized": "._api", "nodes": "._api", "put": "._api", "shutdown": "._api",
    "wait": "._api",
    "ActorClass": "._actor_class", "ActorHandle": "._actor_class", "ActorMethod": "._actor_class",
    "get_actor": "._actor_class", "kill": "._actor_class", "method": "._actor_class",
    "RuntimeContext": "._context", "get_gpu_ids": "._context", "get_runtime_context": "._context",
    "ObjectRef": "._core", "ObjectRefGenerator": "._core._streams", "DynamicObjectRefGenerator": "._core._streams",
    "RemoteFunction": "._remote_function", "remote": "._remote_function",
    "SupervisionGroup": "._supervision", "supervisor": "._supervision",
    "timeline": "._timeline", "ObjectID": "._core",
}  # fmt: skip
_RENAMED = {"ObjectID": "ObjectRef"}  # Ray's older names


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise  # the submodule exists but something it imports does not
            raise AttributeError(f"module 'actorlib' has no attribute {name!r}") from None
    else:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'actorlib' has no attribute {name!r}")
        value = getattr(importlib.import_module(home, __name__), _RENAMED.get(name, name))
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    import importlib.util

    present = [name for name in _SUBMODULES if importlib.util.find_spec(f".{name}", __name__) is not None]
    return sorted({*globals(), *_HOMES, *present})


__version__ = "0.1.0"

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ActorMethod",
    "DynamicObjectRefGenerator",
    "ObjectRef",
    "ObjectRefGenerator",
    "SupervisionGroup",
    "RemoteFunction",
    "RuntimeContext",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "supervisor",
    "timeline",
    "util",
    "wait",
]
