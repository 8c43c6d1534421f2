"""joblib.Parallel on an actorlib cluster, as with Ray's ``ray.util.joblib`` (needs: pip install joblib).

Run it: python examples/joblib_parallel.py   (or: actorlib run examples/joblib_parallel.py)
"""

import os

import joblib
from joblib import Parallel, delayed

import actorlib
from actorlib.util.joblib import register_ray


def square(x):
    return x * x


def where(_):
    return os.getpid()


def stage(_):
    return os.environ.get("STAGE")


def check(x):
    if x < 0:
        raise ValueError(f"negative input: {x}")
    return x


def main():
    actorlib.init(num_cpus=2)  # without it, the first Parallel call would start a cluster
    register_ray()  # the "ray" and "actorlib" joblib backends

    with joblib.parallel_backend("ray"):
        print("squares:", Parallel(n_jobs=2)(delayed(square)(i) for i in range(10)))
        print("n_jobs=-1 is the cluster's CPUs:", joblib.effective_n_jobs(-1))
        pids = set(Parallel(n_jobs=-1, batch_size=1)(delayed(where)(i) for i in range(8)))
        print(f"ran in {len(pids)} pool processes; in this one too: {os.getpid() in pids}")
        try:
            Parallel(n_jobs=2)(delayed(check)(x) for x in [1, 2, -3, 4])
        except ValueError as exc:
            print("a call's error comes back as itself:", repr(exc))

    # options for the pool's actors, per backend or per Parallel
    env = {"runtime_env": {"env_vars": {"STAGE": "prod"}}}
    with joblib.parallel_backend("actorlib", ray_remote_args=env):
        stages = Parallel(n_jobs=2)(delayed(stage)(i) for i in range(3))
        print("ray_remote_args:", stages)
        assert stages == ["prod"] * 3

    actorlib.shutdown()
    print("joblib ok")


if __name__ == "__main__":
    main()
