"""ActorlibBackend: joblib's multiprocessing backend with an actorlib Pool in place of its process pool."""

from __future__ import annotations

import contextlib
import gc
from typing import Any

from joblib._parallel_backends import FallbackToBackend, MultiprocessingBackend, SequentialBackend

from ..multiprocessing import Pool
from ..multiprocessing._pool import _connect

# MemmappingPool's options, which Parallel passes to every multiprocessing-style backend.
# They shape how joblib pickles arrays into its own pipes; actorlib ships arguments through
# its object store instead, so they are accepted and have no effect (as under Ray).
_MEMMAPPING_OPTIONS = frozenset(
    {"temp_folder", "max_nbytes", "mmap_mode", "verbose", "prewarm", "forward_reducers", "backward_reducers"}
)


class ActorlibBackend(MultiprocessingBackend):
    """joblib backend whose workers are the actors of an ``actorlib.util.multiprocessing.Pool``.

    Registered as "ray" and "actorlib" by ``register_ray()``. Everything but
    the pool is joblib's multiprocessing backend: auto-batching, error
    propagation (the call's own exception, the worker's traceback as its
    ``__cause__``), ``timeout``, falling back to sequential for one job, and
    threads for nested ``Parallel`` calls inside a call.

    A negative ``n_jobs`` counts the cluster's CPUs (``-1``: all of them,
    ``-2``: all but one, ...), connecting to or starting a cluster first as
    ``Pool`` does. More jobs than the cluster has CPUs is a ValueError.

    Args:
        nesting_level, inner_max_num_threads: as for any joblib backend.
        ray_remote_args: options for the pool's actors (``Cls.options(...)``);
            ``Parallel(..., ray_remote_args=...)`` overrides it per call.
        **pool_options: more ``Pool`` arguments (``initializer``, ``initargs``,
            ``maxtasksperchild``, ``ray_address``); joblib's memmapping options
            are accepted and ignored. Anything else is a TypeError from Pool.
    """

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **pool_options: Any,
    ) -> None:
        self.ray_remote_args = ray_remote_args
        super().__init__(nesting_level=nesting_level, inner_max_num_threads=inner_max_num_threads, **pool_options)

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        """How many calls run at once for ``n_jobs``; a negative one counts the cluster's CPUs
        (and so may start or connect to a cluster)."""
        if isinstance(n_jobs, int) and n_jobs < 0:
            n_jobs = max(_cluster_cpus(self.backend_kwargs.get("ray_address")) + 1 + n_jobs, 1)
        return super().effective_n_jobs(n_jobs)

    def configure(
        self,
        n_jobs: int = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **pool_options: Any,
    ) -> int:
        """Start the pool for one ``Parallel`` (called by joblib); returns the number of workers.

        Raises FallbackToBackend (joblib runs the calls in this process) for a single job.
        """
        # MultiprocessingBackend.configure builds joblib's MemmappingPool by name; Ray swaps
        # that class's base for its Pool process-wide, we build our Pool here instead.
        n_jobs = self.effective_n_jobs(n_jobs)
        if n_jobs == 1:
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        options = {k: v for k, v in {**self.backend_kwargs, **pool_options}.items() if k not in _MEMMAPPING_OPTIONS}
        if ray_remote_args is None:
            ray_remote_args = self.ray_remote_args
        gc.collect()  # as joblib does before starting workers
        self._pool = Pool(n_jobs, ray_remote_args=ray_remote_args, **options)
        self.parallel = parallel
        return n_jobs

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Stop the pool's work after a call failed (called by joblib); a new pool if ``ensure_ready``."""
        # joblib dispatches the next batch from callback threads, holding the Parallel's lock and
        # checking its abort flag under it; holding that lock here, no dispatch is halfway into
        # the pool being terminated (where it would fail with "Pool not running").
        with getattr(self.parallel, "_lock", None) or contextlib.nullcontext():
            super().abort_everything(ensure_ready=ensure_ready)


def _cluster_cpus(address: str | None) -> int:
    """The cluster's CPUs, after connecting to it (``address``, $ACTORLIB_ADDRESS) or starting one."""
    return _connect(None, address)
