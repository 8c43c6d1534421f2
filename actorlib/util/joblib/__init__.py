"""A joblib parallel backend whose workers are actorlib actors (Ray's ``ray.util.joblib``).

``register_ray()`` (or ``register_actorlib()``) makes ``joblib.parallel_backend("ray")``
and ``parallel_backend("actorlib")`` run ``joblib.Parallel`` calls on the cluster.
joblib is an optional dependency: ``pip install joblib``.
"""

try:
    from joblib.parallel import register_parallel_backend
except ImportError as exc:  # a clear word instead of joblib's bare ModuleNotFoundError
    raise ImportError(
        "actorlib.util.joblib needs the joblib package, which is not installed: pip install joblib"
    ) from exc

from ._backend import ActorlibBackend

RayBackend = ActorlibBackend


def register_actorlib() -> None:
    """Register the backend as joblib's "actorlib" and "ray" backends.

    Afterwards ``with joblib.parallel_backend("ray"):`` (or ``"actorlib"``, or
    ``joblib.parallel_config(backend=...)``) runs ``joblib.Parallel`` calls as
    actorlib work. Idempotent; does not start or connect to a cluster (the
    first parallel call does, if needed).
    """
    register_parallel_backend("actorlib", ActorlibBackend)
    register_parallel_backend("ray", ActorlibBackend)


register_ray = register_actorlib

__all__ = ["ActorlibBackend", "RayBackend", "register_actorlib", "register_ray"]
