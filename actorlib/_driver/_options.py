"""What ``actorlib.init()`` (or ``actorlib start``) was asked for, checked, with defaults filled in."""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import _ids
from .._node import NodeConfig
from .._node._gpus import detect
from .._store import default_capacity
from .._options import validate_resources
from .._runtime_env import check_runtime_env
from .._session import head_address


@dataclass(frozen=True)
class InitOptions:
    address: str | None = None
    num_cpus: float | None = None
    num_gpus: float | None = None
    memory: float | None = None
    object_store_memory: int | None = None
    resources: dict[str, float] = field(default_factory=dict)
    namespace: str = ""
    env_vars: dict[str, str] = field(default_factory=dict)
    log_to_driver: bool = True
    runtime_env: dict[str, Any] = field(default_factory=dict)  # checked; local directories not yet uploaded
    dashboard_port: int = -1  # an embedded cluster's HTTP API: -1 none, 0 any free port
    dashboard_host: str = "127.0.0.1"
    object_spilling_directory: str = ""  # "": the node's default (see _store._spill.spill_settings)
    object_spilling_limit: int = -1  # bytes; 0 turns spilling off, -1 the default

    @classmethod
    def check(cls, address: str | None, **kwargs: Any) -> InitOptions:
        """Validate ``init()`` arguments; raise ValueError/TypeError naming the bad one."""
        for name in ("num_cpus", "num_gpus", "memory", "object_store_memory"):
            value = kwargs.get(name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf):
                raise ValueError(f"init({name}=...) must be a finite non-negative number, got {value!r}")
        resources = validate_resources(kwargs.get("resources") or {}, where="init")
        namespace = kwargs.get("namespace") or ""
        if not isinstance(namespace, str):
            raise TypeError(f"init(namespace=...) must be a string, got {namespace!r}")
        runtime_env = check_runtime_env(kwargs.get("runtime_env"), where="init")
        spill_directory, spill_limit = check_spilling(kwargs)
        dashboard_port = -1
        if kwargs.get("include_dashboard"):
            dashboard_port = kwargs.get("dashboard_port", 8265)
            if not isinstance(dashboard_port, int) or isinstance(dashboard_port, bool) or not 0 <= dashboard_port <= 65535:
                raise ValueError(f"init(dashboard_port=...) must be a port number (0: any free port), got {dashboard_port!r}")
        return cls(
            address=address,
            num_cpus=kwargs.get("num_cpus"),
            num_gpus=kwargs.get("num_gpus"),
            memory=kwargs.get("memory"),
            object_store_memory=kwargs.get("object_store_memory"),
            resources=resources,
            namespace=namespace,
            env_vars=dict(runtime_env.get("env_vars") or {}),
            log_to_driver=bool(kwargs.get("log_to_driver", True)),
            runtime_env=runtime_env,
            dashboard_port=dashboard_port,
            dashboard_host=str(kwargs.get("dashboard_host") or "127.0.0.1"),
            object_spilling_directory=spill_directory,
            object_spilling_limit=spill_limit,
        )

    def local_config(self, session: Path) -> NodeConfig:
        """The config of the head (and only node) of a local cluster in ``session``."""
        return self.node_config(
            session, head_address=head_address(session), dashboard_host=self.dashboard_host,
            dashboard_port=self.dashboard_port,
        )  # fmt: skip

    def node_config(self, session: Path, **fields: Any) -> NodeConfig:
        """The config of a new node in ``session``: its resources (see :meth:`node_resources`),
        GPU ids and store size from these options; anything else from ``fields``."""
        store = self.object_store_memory or default_capacity()
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        resources = self.node_resources(memory, store)
        return NodeConfig(
            session_dir=str(session), node_id=_ids.unique_id().hex(), resources=resources,
            gpu_ids=gpu_ids(resources["GPU"]), object_store_memory=int(store),
            object_spilling_directory=self.object_spilling_directory, object_spilling_limit=self.object_spilling_limit,
            **fields,
        )  # fmt: skip

    def node_resources(self, physical_memory: int, store_memory: int) -> dict[str, float]:
        """The local node's resources: CPUs by default all cores, memory 70% of RAM minus the store."""
        cpus = self.num_cpus if self.num_cpus is not None else float(os.cpu_count() or 1)
        gpus = self.num_gpus if self.num_gpus is not None else float(len(detect()))
        memory = self.memory if self.memory is not None else max(0.0, physical_memory * 0.7 - store_memory)
        return {"CPU": float(cpus), "GPU": float(gpus), "memory": float(int(memory)), **self.resources}


def gpu_ids(count: float) -> list[str]:
    """The ids behind ``count`` GPUs: the detected ones first, then unused "0", "1", ..."""
    ids = detect()[: math.ceil(count)]
    spare = (str(i) for i in itertools.count() if str(i) not in ids)
    return ids + [next(spare) for _ in range(math.ceil(count) - len(ids))]


def check_spilling(kwargs: dict[str, Any]) -> tuple[str, int]:
    """``(directory, limit)`` from ``object_spilling_directory`` / ``object_spilling_limit``, or
    Ray's ``_system_config`` spelling (``object_spilling_config``'s ``directory_path``,
    ``automatic_object_spilling_enabled``); raises ValueError/TypeError naming a bad one."""
    system = kwargs.get("_system_config") or {}
    if not isinstance(system, dict):
        raise TypeError(f"init(_system_config=...) must be a dict, got {system!r}")
    directory = kwargs.get("object_spilling_directory") or _ray_spill_directory(system.get("object_spilling_config"))
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"init(object_spilling_directory=...) must be a path, got {directory!r}")
    limit = kwargs.get("object_spilling_limit")
    if limit is None:
        limit = 0 if system.get("automatic_object_spilling_enabled") is False else -1
    elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"init(object_spilling_limit=...) must be a number of bytes (0: no spilling), got {limit!r}")
    return (os.path.abspath(os.fspath(directory)) if directory else ""), limit


def _ray_spill_directory(config: Any) -> str:
    """The directory of Ray's ``object_spilling_config`` (a JSON string or a dict of type "filesystem")."""
    if not config:
        return ""
    try:
        parsed = json.loads(config) if isinstance(config, str) else config
        params = parsed.get("params", {})
        path = params.get("directory_path", "")
    except (ValueError, AttributeError):
        raise ValueError(f"_system_config object_spilling_config must be Ray's JSON, got {config!r}") from None
    if parsed.get("type", "filesystem") != "filesystem":
        raise ValueError(f"only filesystem spilling is supported, got object_spilling_config type {parsed.get('type')!r}")
    if isinstance(path, list):  # Ray accepts several directories; we spill to the first
        path = path[0] if path else ""
    if not isinstance(path, str):
        raise ValueError(f"object_spilling_config directory_path must be a path, got {path!r}")
    return path
