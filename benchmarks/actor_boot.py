"""Where an actor's boot goes: ``python -m benchmarks.actor_boot [--count N] [--repeat R]``.

Creates N actors (no CPU each) on a fresh local cluster until each answered one call, R
times, and prints per actor (medians over the rounds): the CPU time each kind of process
spent on it (the actor's own process, the head process with the head's node, the zygote
that forks it, the driver), user and system apart, read from /proc before and after; then
what an idle actor holds: private dirty memory, PSS, minor page faults and threads. CPU
time, not wall time: on a shared 2-core machine it is what tells where creating a thousand
actors would go (wall time >= total CPU per actor x actors / cores).
"""

import argparse
import os
import statistics
import sys
import time

import psutil

import actorlib


class Pinger:
    def ping(self) -> int:
        return os.getpid()


def _one() -> int:
    return 1


def _cpu_by_role(me: psutil.Process) -> dict[int, tuple[str, float, float]]:
    seen = {}
    for process in [me, *me.children(recursive=True)]:
        try:
            times = process.cpu_times()
            name = "driver" if process.pid == me.pid else process.name().removeprefix("actorlib::")
        except psutil.Error:
            continue
        seen[process.pid] = (name, times.user, times.system)
    return seen


def _idle_actor(pid: int) -> dict[str, float]:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    rollup = {line.split(":")[0]: int(line.split()[1]) for line in open(f"/proc/{pid}/smaps_rollup") if line.split()[-1] == "kB"}
    return {
        "private dirty MiB": rollup["Private_Dirty"] / 1024,
        "PSS MiB": rollup["Pss"] / 1024,
        "minor faults": int(fields[7]),
        "threads": int(fields[17]),
    }


def one_round(count: int) -> dict[str, float]:
    actorlib.init(num_cpus=2)
    try:
        actorlib.get(actorlib.remote(_one).remote(), timeout=120)
        time.sleep(1.0)
        me = psutil.Process()
        before = _cpu_by_role(me)
        cls = actorlib.remote(num_cpus=0)(Pinger)
        t0 = time.perf_counter()
        actors = [cls.remote() for _ in range(count)]
        pids = set(actorlib.get([a.ping.remote() for a in actors], timeout=900))
        figures = {"created and answered, s": time.perf_counter() - t0}
        after = _cpu_by_role(me)
        for pid, (name, user, system) in after.items():
            role = "actor" if pid in pids else name
            old_user, old_system = before.get(pid, (name, 0.0, 0.0))[1:]
            for kind, spent in (("user", user - old_user), ("sys", system - old_system)):
                key = f"CPU ms per actor: {role} {kind}"
                figures[key] = figures.get(key, 0.0) + spent * 1000 / count
        figures["CPU ms per actor: total"] = sum(v for k, v in figures.items() if k.startswith("CPU ms"))
        time.sleep(1.0)  # idle: what an actor holds once started
        idle = [_idle_actor(pid) for pid in sorted(pids)[:20]]
        for key in idle[0]:
            figures[f"idle actor: {key}"] = statistics.mean(sample[key] for sample in idle)
        figures["load average"] = os.getloadavg()[0]
        return figures
    finally:
        actorlib.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="actors per round (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each on a fresh cluster (default 3)")
    args = parser.parse_args()
    rounds = []
    for index in range(args.repeat):
        rounds.append(one_round(args.count))
        print(f"[{index + 1}/{args.repeat}] {rounds[-1]['created and answered, s']:.2f} s", file=sys.stderr)
    keys = sorted({key for figures in rounds for key in figures}, key=lambda k: (not k.startswith("created"), k))
    print(f"{args.count} actors per round, medians of {args.repeat} rounds (actorlib at {os.path.dirname(actorlib.__file__)})")
    for key in keys:
        values = [figures.get(key, 0.0) for figures in rounds]
        print(f"  {key:42s} {statistics.median(values):9.2f}   ({', '.join(f'{v:.2f}' for v in values)})")


if __name__ == "__main__":
    main()
