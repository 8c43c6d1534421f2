"""Spilling: objects worth three stores put while every ref is held, then read back,
actorlib beside Ray in one run: ``python -m benchmarks.spill``.

Each sample is a fresh process per system (``--child SYSTEM``, one JSON line): ``init``
with a ``--store-mib`` object store (default 256 MiB) and 2 CPUs, then ``--objects``
(default 12) float arrays of ``--object-mib`` (default 64 MiB) each, ``put`` one after
another while every ref is kept (3x the store: two thirds must go to disk), then ``get``
of each in order, touching one byte per 4 KiB page, the array dropped before the next.
Figures: **put MB/s** (all bytes put / the time of all puts: memory, then spilling),
**restore MB/s** (bytes of the objects that were on disk / the time of their gets) and
all gets' MB/s. Both systems spill to the same disk (their session directories under
/tmp). Ray spills in the background and blocks ``put`` when its store is full; actorlib
spills inside the ``put`` that needs the room (docs/objects.md#spilling).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MB = 1e6
MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent


def child(system: str, store_mib: int, objects: int, object_mib: int) -> dict[str, Any]:
    import numpy as np

    if system == "ray":
        import ray as rt

        rt.init(num_cpus=2, object_store_memory=store_mib * MIB, include_dashboard=False, _node_ip_address="127.0.0.1")
    else:
        import actorlib as rt

        rt.init(num_cpus=2, object_store_memory=store_mib * MIB)
    size = object_mib * MIB
    arrays = [np.full(size // 8, i, dtype=np.float64) for i in range(2)]  # made before timing
    start = time.perf_counter()
    refs = [rt.put(arrays[i % 2]) for i in range(objects)]
    put_s = time.perf_counter() - start
    times = []
    for i, ref in enumerate(refs):
        begin = time.perf_counter()
        value = rt.get(ref)
        touched = float(value.view(np.uint8)[::4096].sum())
        times.append(time.perf_counter() - begin)
        assert value[0] == i % 2 and value[-1] == i % 2, (i, value[0])
        del value
    in_memory = max(1, store_mib // object_mib - 1)  # the last puts stayed in memory (both systems)
    spilled = times[: objects - in_memory]
    rt.shutdown()
    del touched
    return {
        "put_MBps": objects * size / put_s / MB,
        "restore_MBps": len(spilled) * size / sum(spilled) / MB,
        "get_all_MBps": objects * size / sum(times) / MB,
        "put_s": put_s,
    }


def run_child(python: str, system: str, args: argparse.Namespace) -> dict[str, Any]:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
        "ACTORLIB_TMPDIR": args.tmp,
    }  # fmt: skip
    argv = [python, "-m", "benchmarks.spill", "--child", system, "--store-mib", str(args.store_mib),
            "--objects", str(args.objects), "--object-mib", str(args.object_mib)]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, env=env, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", choices=("actorlib", "ray"))
    parser.add_argument("--ray-python", default=sys.executable)
    parser.add_argument("--systems", default="actorlib,ray")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store-mib", type=int, default=256)
    parser.add_argument("--objects", type=int, default=12)
    parser.add_argument("--object-mib", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.store_mib, args.objects, args.object_mib)), flush=True)
        return
    samples: dict[str, list[dict[str, Any]]] = {system: [] for system in args.systems.split(",")}
    with tempfile.TemporaryDirectory(prefix="bs-", dir="/tmp") as tmp:
        args.tmp = tmp
        for round_ in range(args.repeat):
            for system in samples:
                python = args.ray_python if system == "ray" else sys.executable
                sample = run_child(python, system, args)
                print(f"round {round_ + 1} {system}: {sample}", file=sys.stderr)
                samples[system].append(sample)
    report(samples, args)
    if args.json:
        Path(args.json).write_text(json.dumps(samples, indent=1))


def report(samples: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> None:
    total = args.objects * args.object_mib
    print(f"{total} MiB in {args.objects} objects into a {args.store_mib} MiB store, median of {args.repeat}")
    figures = ("put_MBps", "restore_MBps", "get_all_MBps")
    print(f"{'system':10}" + "".join(f"{name:>16}" for name in figures))
    medians: dict[str, dict[str, float]] = {}
    for system, runs in samples.items():
        good = [run for run in runs if "error" not in run]
        if not good:
            print(f"{system:10}  error: {runs[-1].get('error', '')[-300:]}")
            continue
        medians[system] = {name: statistics.median(run[name] for run in good) for name in figures}
        print(f"{system:10}" + "".join(f"{medians[system][name]:16.0f}" for name in figures))
    if "actorlib" in medians and "ray" in medians:
        print(f"{'ratio':10}" + "".join(f"{medians['actorlib'][n] / medians['ray'][n]:15.2f}x" for n in figures))


if __name__ == "__main__":
    main()
