"""``get_runtime_context()``: who and where the calling code runs; ``get_gpu_ids()``."""

from __future__ import annotations

import os

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
        """The running task's id, or None in a driver."""
        executor = self._runtime.executor
        task = executor.current if executor is not None else None
        return task.task_id.hex() if task is not None else None

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
