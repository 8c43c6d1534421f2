"""``init()``: it starts a local cluster's head before importing the runtime, so the two
overlap; this module imports nothing else until then."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

from ._environ import ADDRESS_ENV
from ._phases import mark

if TYPE_CHECKING:
    from ._api import InitContext


def init(
    address: str | None = None,
    *,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    resources: dict[str, float] | None = None,
    memory: float | None = None,
    object_store_memory: int | None = None,
    namespace: str | None = None,
    runtime_env: dict[str, Any] | None = None,
    ignore_reinit_error: bool = False,
    log_to_driver: bool = True,
    object_spilling_directory: str | None = None,
    object_spilling_limit: int | None = None,
    **ray_only: Any,
) -> InitContext:
    """Start an embedded local cluster (no address) or connect to one; make this process a driver.

    ``address`` defaults to $ACTORLIB_ADDRESS; ``"auto"`` is $ACTORLIB_ADDRESS when set, else this
    user's newest cluster on this machine. Blocks until the cluster
    answers. Calling it twice raises RuntimeError unless
    ``ignore_reinit_error=True``. ``runtime_env`` (``env_vars``,
    ``working_dir``, ``py_modules``, ``excludes``) applies to every task and
    actor of this driver; local directories are uploaded to the cluster.
    A full object store spills to ``object_spilling_directory`` (default: under the
    session), at most ``object_spilling_limit`` bytes (default: the disk's free
    space less 5%; 0 turns spilling off); Ray's ``_system_config`` spelling
    (``object_spilling_config``, ``automatic_object_spilling_enabled``) works too.
    An embedded cluster serves the HTTP API (jobs) only when asked with
    ``include_dashboard=True`` (``dashboard_host``, ``dashboard_port``:
    default 127.0.0.1:8265, 0 for any free port; see docs/jobs.md).
    Ray-only keyword arguments that have no
    meaning here (``include_dashboard``, ``_node_ip_address``, ...) are
    accepted and ignored.
    """
    mark("driver: init() called")
    given = os.environ.get(ADDRESS_ENV) or None
    # As in Ray, "auto" means $ACTORLIB_ADDRESS when that names a cluster (set by `actorlib run`
    # and for job entrypoints), and otherwise this user's newest cluster on this machine.
    address = (given if address == "auto" and given not in (None, "auto") else address) or given
    if address == "local":  # Ray's: a new local cluster, even if $ACTORLIB_ADDRESS names one
        address = None
    options = {
        "num_cpus": num_cpus, "num_gpus": num_gpus, "resources": resources, "memory": memory,
        "object_store_memory": object_store_memory, "namespace": namespace, "runtime_env": runtime_env,
        "ignore_reinit_error": ignore_reinit_error, "log_to_driver": log_to_driver,
        "object_spilling_directory": object_spilling_directory, "object_spilling_limit": object_spilling_limit,
        **{k: ray_only[k] for k in ("include_dashboard", "dashboard_port", "dashboard_host", "_system_config") if k in ray_only},
    }  # fmt: skip
    early = None
    if address is None and not _running():
        from . import _early_head

        early = _early_head.start({k: v for k, v in options.items() if v is not None})
        mark("driver: head spawned")
    try:
        from ._api import start

        mark("driver: runtime imported")

        return start(address, early, options)
    finally:
        if early is not None:
            early.abandon()  # unless the driver's supervisor adopted it: then this does nothing


def _running() -> bool:
    """Whether this process already has a live runtime (a driver's, or a worker's own)."""
    runtime_module = sys.modules.get("actorlib._core._runtime")
    current = getattr(runtime_module, "_current", None)
    return current is not None and not current.closed
