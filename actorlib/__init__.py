"""actorlib: a distributed actor runtime for Python on Trio, with Ray Core's API.

``import actorlib as ray`` runs Ray Core programs wherever the feature exists.
"""

from . import exceptions
from ._api import (
    available_resources,
    cancel,
    cluster_resources,
    get,
    init,
    is_initialized,
    nodes,
    put,
    shutdown,
    wait,
)
from ._actor_class import ActorClass, ActorHandle, ActorMethod, get_actor, kill, method
from ._context import RuntimeContext, get_gpu_ids, get_runtime_context
from ._core import ObjectRef
from ._core._streams import ObjectRefGenerator
from ._remote_function import RemoteFunction, remote
from ._supervision import SupervisionGroup, supervisor

__version__ = "0.1.0"

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ActorMethod",
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
    "wait",
]
