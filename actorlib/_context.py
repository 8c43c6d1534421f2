"""``get_runtime_context()``: who and where the calling code runs; ``get_gpu_ids()``."""

from __future__ import annotations

import os
from typing import Any

from ._core import Runtime, current


class RuntimeContext:
    """Ids of the current job, node, worker and task (hex strings, like Ray's)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def get_job_id(self) -> str:
        return self._runtime.identity.job_id

    def get_node_id(self) -> str:
        return self._runtime.identity.node_id.hex()

    def get_worker_id(self) -> str:
        return self._runtime.identity.core_id.hex()

    def get_task_id(self) -> str | None:
        """The running task's (or actor method call's) id, or None in a driver."""
        call_id = self._call_id()
        return call_id.hex() if call_id is not None else None

    def is_canceled(self) -> bool:
        """Whether the running task or actor call was cancelled (``actorlib.cancel``): a sync
        actor method is not interrupted, and may look here to stop early. RuntimeError in a driver."""
        executor = self._runtime.executor
        call_id = self._call_id()
        if executor is None or call_id is None:
            raise RuntimeError("is_canceled() is only available in a task or an actor method")
        if executor.actor is not None:
            return bool(executor.actor.cancelled(call_id))
        return bool(executor.was_cancelled(call_id))

    def _call_id(self) -> bytes | None:
        return self._runtime.running_task() or None

    def get_task_name(self) -> str | None:
        executor = self._runtime.executor
        task = executor.current if executor is not None else None
        return task.name if task is not None else None

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """The accelerators assigned to the running task or actor: ``{"GPU": ["0"]}``."""
        return {"GPU": _assigned_gpus(self._runtime)}

    def get_actor_id(self) -> str | None:
        """The actor's id in an actor process, else None."""
        actor_id = self._runtime.identity.actor_id
        return actor_id.hex() if actor_id else None

    def get_assigned_resources(self) -> dict[str, float]:
        """The resources the running task, or this actor for its life, holds: ``{"CPU": 1.0}``.
        Empty in a driver. (In a placement group, the bundle's resource names.)"""
        executor = self._runtime.executor
        task = executor.current if executor is not None else None
        if task is not None:
            return dict(task.resources)
        spec = self._actor_spec()
        return dict(spec.shape) if spec is not None else {}

    def get_node_labels(self) -> dict[str, str]:
        """The labels of the node this runs on (``actorlib start --labels``; asks the head)."""
        from ._api import nodes

        node_id = self.get_node_id()
        return next((node["Labels"] for node in nodes() if node["NodeID"] == node_id), {})

    def get_resource_ids(self) -> dict[str, list[str]]:
        """Ray's older name for :meth:`get_accelerator_ids`."""
        return self.get_accelerator_ids()

    def get_actor_name(self) -> str | None:
        """The actor's name ("" when it has none) in an actor process; None elsewhere."""
        spec = self._actor_spec()
        return None if spec is None else spec.name

    def get_task_function_name(self) -> str | None:
        """The running task's function (``Class.method`` for an actor's call); None in a driver."""
        return self.get_task_name()

    def get_placement_group_id(self) -> str | None:
        """The placement group the calling task or actor runs in (hex), or None."""
        executor = self._runtime.executor
        task = executor.current if executor is not None else None
        pg_id = task.placement_group if task is not None else self._runtime.identity.placement_group
        return pg_id.hex() if pg_id else None

    @property
    def current_actor(self) -> Any:
        """A handle to the calling actor itself. Raises RuntimeError outside an actor."""
        spec = self._actor_spec()
        if spec is None:
            raise RuntimeError("current_actor is only available in an actor")
        from ._actor_class import ActorHandle

        return ActorHandle(spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries, self._runtime)

    def was_current_actor_reconstructed(self) -> bool:
        """Whether this actor was restarted at least once (asks the head, as Ray does)."""
        actor_id = self.get_actor_id()
        if actor_id is None:
            raise RuntimeError("was_current_actor_reconstructed() is only available in an actor")
        from .util.state import get_actor

        state = get_actor(actor_id, address=self._runtime.identity.head_address)
        return bool(state is not None and state.num_restarts)

    def get_temp_dir(self) -> str:
        """This process's session directory (its node's, on a worker): logs and sockets live there."""
        return str(self._runtime.identity.session_dir)

    def get_session_name(self) -> str:
        """The name of that session directory (``session_<date>_<pid>``)."""
        return self._runtime.identity.session_dir.name

    def get(self) -> dict[str, Any]:
        """The context as a dict (Ray's older API): job, node, task and actor ids, namespace."""
        found: dict[str, Any] = {"job_id": self.get_job_id(), "node_id": self.get_node_id(), "namespace": self.namespace}
        if (task_id := self.get_task_id()) is not None:
            found["task_id"] = task_id
        if (actor_id := self.get_actor_id()) is not None:
            found["actor_id"] = actor_id
        return found

    def _actor_spec(self) -> Any:
        if not self._runtime.identity.actor_id:
            return None
        executor = self._runtime.executor
        actor = getattr(executor, "actor", None) if executor is not None else None
        return actor.spec if actor is not None else None

    @property
    def actor_id(self) -> str | None:
        return self.get_actor_id()

    @property
    def job_id(self) -> str:
        return self.get_job_id()

    @property
    def node_id(self) -> str:
        return self.get_node_id()

    @property
    def task_id(self) -> str | None:
        return self.get_task_id()

    @property
    def namespace(self) -> str:
        return self._runtime.identity.namespace

    @property
    def worker_mode(self) -> str:
        return self._runtime.identity.mode

    @property
    def gcs_address(self) -> str:
        """The head's address (Ray's name): what ``actorlib tree --address`` and the state API take."""
        return self._runtime.identity.head_address

    def __repr__(self) -> str:
        return f"RuntimeContext(job_id={self.job_id!r}, node_id={self.node_id!r}, task_id={self.task_id!r})"


def get_runtime_context() -> RuntimeContext:
    """The context of the calling driver or task. Raises NotInitializedError before init()."""
    return RuntimeContext(current())


def get_gpu_ids() -> list[int | str]:
    """The GPUs assigned to the calling task or actor (ints where the ids are numeric).

    Empty in a driver and in tasks or actors that asked for no GPUs. The
    same ids are in the process's ``CUDA_VISIBLE_DEVICES`` while it runs.
    """
    return [int(gpu) if gpu.isdigit() else gpu for gpu in _assigned_gpus(current())]


def _assigned_gpus(runtime: Runtime) -> list[str]:
    executor = runtime.executor
    if executor is None:
        return []  # a driver holds no resources
    task = executor.current
    if task is not None:
        return list(task.gpu_ids)
    if runtime.identity.actor_id:  # an actor's GPUs are fixed for its process's life
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return [gpu for gpu in visible.split(",") if gpu]
    return []
