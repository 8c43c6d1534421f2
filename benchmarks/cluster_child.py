"""One repetition of the cluster benchmark: ``python -m benchmarks.cluster_child --system S``.

``--system actorlib`` or ``ray``: start a 3-node cluster on loopback addresses with the
system's own command line (a head, then two worker nodes), connect this process as
the driver, and measure node join, a 100 MiB cross-node transfer, and how long the
driver takes to see a SIGKILLed and a SIGSTOPped (frozen) node as dead. Then stop the
cluster and make sure nothing it started survives. ``--system tcp``: the loopback TCP
bandwidth of a plain Python socket pair, the yardstick for the transfer.

Prints exactly one JSON line of figures on stdout (fd 1 is pointed at stderr first,
see ``child.ResultLine``). Only the standard library and numpy: this runs under
Ray's venv too, which has no psutil, so processes are found through /proc.

The process makes itself a child subreaper, so every daemon the start commands leave
behind is reparented to it: its descendants are exactly the cluster, which it stops,
then kills by pid whatever is left.
"""

import argparse
import contextlib
import ctypes
import glob
import importlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from .child import ResultLine

ARRAY_BYTES = 100 * 2**20  # the transferred numpy array: 100 MiB of uint8
TCP_CHUNK = 4 * 2**20
POLL_S = 0.01  # how often the driver asks for the node list
JOIN_DEADLINE_S = 60.0
CLI_TIMEOUT_S = 120.0
GET_TIMEOUT_S = 120.0
STOP_GRACE_S = 5.0  # as `actorlib stop --grace-period 5`
NODE_TIMEOUT_S = 4.0  # actorlib's default, passed explicitly
HEAD_IP = {"actorlib": "127.0.0.1", "ray": "127.0.0.4"}  # see RayCluster for why not 127.0.0.1
NODE_A, NODE_B = "127.0.0.2", "127.0.0.3"  # producer / SIGKILLed; consumer / frozen
_PR_SET_CHILD_SUBREAPER = 36


# --- processes, through /proc -------------------------------------------------------


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) for every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), fields[0].decode())
    return table


def descendants() -> dict[int, str]:
    """This process's descendants: pid -> state (Z for a zombie)."""
    table, me = _proc_table(), os.getpid()
    found: dict[int, str] = {}
    for pid in table:
        p = pid
        while p in table and p > 1:
            p = table[p][0]
            if p == me:
                found[pid] = table[pid][1]
                break
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def describe(pid: int) -> str:
    return f"{pid} {' '.join(cmdline(pid))}"[:160]


_WAITING: set[int] = set()  # Popen children whose exit status is still to be read by Popen


def reap() -> None:
    """Reap the zombies of processes adopted by this process (never a Popen child in _WAITING)."""
    me = os.getpid()
    for pid, (ppid, state) in _proc_table().items():
        if ppid == me and state == "Z" and pid not in _WAITING:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


@contextlib.contextmanager
def reaping(interval_s: float = 0.02) -> Iterator[None]:
    """Reap adopted zombies in a thread, as init would: a stop command waiting for a
    process to exit must not be kept waiting by its unreaped zombie."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(interval_s):
            reap()

    thread = threading.Thread(target=loop, name="reaper", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def live_descendants() -> list[int]:
    reap()
    return [pid for pid, state in descendants().items() if state != "Z"]


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_none_left(deadline_s: float) -> list[int]:
    """Poll until no descendant is alive; returns those still alive at the deadline."""
    deadline = time.monotonic() + deadline_s
    while (alive := live_descendants()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def kill_everything_left() -> list[str]:
    """SIGCONT then SIGKILL (by pid) every live descendant; returns their descriptions."""
    alive = live_descendants()
    described = [describe(pid) for pid in alive]
    signal_all(alive, signal.SIGCONT)
    signal_all(alive, signal.SIGKILL)
    left = wait_none_left(10.0)
    if left:
        raise RuntimeError(f"processes survive SIGKILL: {[describe(p) for p in left]}")
    return described


def free_port(ip: str) -> int:
    with socket.socket() as probe:
        probe.bind((ip, 0))
        return int(probe.getsockname()[1])


def poll(predicate: Callable[[], Any], deadline_s: float, what: str) -> Any:
    deadline = time.monotonic() + deadline_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {deadline_s:g} s")
        time.sleep(POLL_S)
    return value


def log(message: str) -> None:
    print(f"cluster_child: {message}", file=sys.stderr, flush=True)


# --- the two clusters -----------------------------------------------------------------


class Cluster:
    """Start commands, the driver, the main process of each node, and stopping."""

    system = ""

    def __init__(self, deadline_s: float) -> None:
        self.tmp = tempfile.mkdtemp(prefix="bc-", dir="/tmp")  # short: socket paths have a length limit
        self.head_ip = HEAD_IP[self.system]
        self.port = free_port(self.head_ip)
        self.address = f"{self.head_ip}:{self.port}"
        self.detect_deadline_s = deadline_s
        self.env = dict(os.environ)
        self._cli_count = 0
        self.rt: ModuleType = None  # type: ignore[assignment]

    def cli_cmd(self, *args: str) -> list[str]:
        raise NotImplementedError

    def launch(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        """Start a command line of the system, its output to a file (its daemons may inherit it)."""
        self._cli_count += 1
        out_path = Path(self.tmp) / f"cli-{self._cli_count}.out"
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(self.cli_cmd(*args), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env)
        _WAITING.add(proc.pid)
        return proc, out_path

    @staticmethod
    def waited(proc: subprocess.Popen[bytes]) -> None:
        """Popen has read the exit status: the pid may be reused, stop protecting it."""
        _WAITING.discard(proc.pid)

    def cli(self, *args: str) -> str:
        proc, out_path = self.launch(*args)
        try:
            code = proc.wait(CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"{' '.join(args[:2])}: timed out\n{self.tail(out_path)}") from None
        finally:
            self.waited(proc)
        if code != 0:
            raise RuntimeError(f"{' '.join(args[:2])}: exit code {code}\n{self.tail(out_path)}")
        return out_path.read_text(errors="replace")

    @staticmethod
    def tail(path: Path, lines: int = 15) -> str:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def start_head(self) -> None:
        raise NotImplementedError

    def node_args(self, ip: str) -> list[str]:
        raise NotImplementedError

    def connect(self) -> None:
        raise NotImplementedError

    def main_pid(self, ip: str) -> int:
        """The pid of the process whose death is the node's death."""
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def bytes_moved(self) -> int | None:
        """Object bytes sent between nodes so far; None: the system does not say."""
        return None

    def nodes(self) -> list[dict[str, Any]]:
        return self.rt.nodes()  # type: ignore[no-any-return]

    def alive_ids(self) -> dict[str, str]:
        """NodeID -> IP of the nodes the driver sees alive."""
        return {n["NodeID"]: n["NodeManagerAddress"] for n in self.nodes() if n["Alive"]}

    def is_dead(self, node_id: str) -> bool:
        return not any(n["NodeID"] == node_id and n["Alive"] for n in self.nodes())

    def disconnect(self) -> None:
        if self.rt is not None and self.rt.is_initialized():
            self.rt.shutdown()


class ActorlibCluster(Cluster):
    """``python -m actorlib start``; isolated by ACTORLIB_TMPDIR, so ``stop`` only sees ours."""

    system = "actorlib"

    def __init__(self, deadline_s: float) -> None:
        super().__init__(deadline_s)
        self.env["ACTORLIB_TMPDIR"] = self.tmp
        os.environ["ACTORLIB_TMPDIR"] = self.tmp  # the driver's own files too
        self.token_file = ""
        self.pids: dict[str, int] = {}

    def cli_cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "actorlib", *args]

    def start_head(self) -> None:
        self.cli("start", "--head", "--port", str(self.port), "--num-cpus", "1",
                 "--node-timeout", str(NODE_TIMEOUT_S))
        self.token_file = str(next(Path(self.tmp).glob("actorlib-*/session_2*/token")))

    def node_args(self, ip: str) -> list[str]:
        self._before = set(self._node_pids())
        return ["start", "--address", self.address, "--token-file", self.token_file, "--node-ip-address", ip,
                "--num-cpus", "1", "--resources", json.dumps({"a": 1})]

    def node_started(self, ip: str) -> None:
        (pid,) = set(self._node_pids()) - self._before
        self.pids[ip] = pid

    def _node_pids(self) -> list[int]:
        return [json.loads(Path(p).read_text())["pid"]
                for p in glob.glob(f"{self.tmp}/actorlib-*/session_2*/node.json")]

    def connect(self) -> None:
        os.environ["ACTORLIB_TOKEN_FILE"] = self.token_file
        self.rt = importlib.import_module("actorlib")
        self.rt.init(address=self.address)

    def main_pid(self, ip: str) -> int:
        return self.pids[ip]

    def bytes_moved(self) -> int | None:
        """Object bytes every node's store has sent to another node so far (its stats)."""
        import msgspec

        from actorlib._state import StatsResult
        from actorlib.util.state import query

        return sum(n.store_bytes_sent for n in msgspec.msgpack.decode(query("stats"), type=StatsResult).nodes)

    def stop(self) -> None:
        self.cli("stop", "--grace-period", f"{STOP_GRACE_S:g}")


class RayCluster(Cluster):
    """``ray start``, every node on its own loopback address.

    - RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER must be 1 here: at 0 (what the main suite
      uses), ``ray start --address`` refuses to join a node.
    - With it at 1, Ray rewrites 127.0.0.1 (and "localhost") to the machine's
      routable IP, so the head uses 127.0.0.4 instead: every node, and the driver,
      then stay on 127.0.0.x.
    - RAY_AUTH_MODE is set explicitly (token, with a fresh token): left unset, a
      ~/.ray/auth_token makes ``ray start --head`` require a token that the joining
      nodes do not send. actorlib's cluster also has a token.
    - The GCS and the raylets' gRPC servers still listen on all interfaces; Ray has
      no setting for that. Every connection made here is to a 127.0.0.x address.
    """

    system = "ray"

    def __init__(self, deadline_s: float) -> None:
        super().__init__(deadline_s)
        self.env |= {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1", "RAY_USAGE_STATS_ENABLED": "0",
                     "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
        os.environ.update({k: v for k, v in self.env.items() if k.startswith("RAY_")})
        self.temp_dir = os.path.join(self.tmp, "ray")
        ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
        self.ray_cmd = [ray_bin] if os.path.exists(ray_bin) else [sys.executable, "-m", "ray.scripts.scripts"]

    def cli_cmd(self, *args: str) -> list[str]:
        return [*self.ray_cmd, *args]

    def start_head(self) -> None:
        self.cli("start", "--head", "--node-ip-address", self.head_ip, "--port", str(self.port), "--num-cpus", "1",
                 "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", self.temp_dir)

    def node_args(self, ip: str) -> list[str]:
        return ["start", "--address", self.address, "--node-ip-address", ip, "--num-cpus", "1",
                "--resources", json.dumps({"a": 1}), "--disable-usage-stats", "--temp-dir", self.temp_dir]

    def node_started(self, ip: str) -> None:
        pass

    def connect(self) -> None:
        self.rt = importlib.import_module("ray")
        self.rt.init(address=self.address, _node_ip_address=self.head_ip)

    def main_pid(self, ip: str) -> int:
        """The raylet of that node: a descendant of ours, started with its IP."""
        flag = f"--node_ip_address={ip}"
        (pid,) = [p for p, state in descendants().items()
                  if state != "Z" and (args := cmdline(p)) and args[0].endswith("/raylet") and flag in args]
        return pid

    def stop(self) -> None:
        """Not ``ray stop``, which kills every Ray process of this user: SIGTERM ours."""
        signal_all(live_descendants(), signal.SIGTERM)
        wait_none_left(STOP_GRACE_S)
        self.forget_cluster()

    def forget_cluster(self) -> None:
        """``ray start --head`` records its address in /tmp/ray/ray_current_cluster, and a later
        ``ray.init()`` with no address then tries to join that (dead) cluster instead of
        starting one, failing every later Ray run on the machine. ``ray stop`` removes the
        file; we do it ourselves, when it still names our cluster."""
        for folder in ("/tmp/ray", self.temp_dir):
            path = os.path.join(folder, "ray_current_cluster")
            try:
                with open(path) as recorded:
                    ours = recorded.read().strip() == self.address
                if ours:
                    os.remove(path)
            except OSError:
                pass


CLUSTERS: dict[str, type[Cluster]] = {"actorlib": ActorlibCluster, "ray": RayCluster}


# --- the measurements -----------------------------------------------------------------


def join_node(cluster: Cluster, ip: str) -> dict[str, Any]:
    """From launching the start command to the driver seeing the node alive (polled every 10 ms)."""
    known = set(cluster.alive_ids())
    args = cluster.node_args(ip)
    t0 = time.perf_counter()
    proc, out_path = cluster.launch(*args)
    seen_s = cli_s = None
    node_id = None
    deadline = t0 + JOIN_DEADLINE_S
    while seen_s is None or cli_s is None:
        now = time.perf_counter()
        if cli_s is None and proc.poll() is not None:
            cli_s = now - t0
            cluster.waited(proc)
            if proc.returncode != 0:
                raise RuntimeError(f"node {ip}: start exited {proc.returncode}\n{cluster.tail(out_path)}")
        if seen_s is None:
            fresh = [nid for nid, nip in cluster.alive_ids().items() if nip == ip and nid not in known]
            if fresh:
                seen_s, node_id = time.perf_counter() - t0, fresh[0]
        if now > deadline:
            proc.kill()
            proc.wait()
            cluster.waited(proc)
            raise TimeoutError(f"node {ip}: not joined within {JOIN_DEADLINE_S:g} s\n{cluster.tail(out_path)}")
        time.sleep(POLL_S)
    cluster.node_started(ip)
    return {"ip": ip, "node_id": node_id, "seen_s": seen_s, "cli_s": cli_s}


def produce(n: int) -> Any:
    import numpy as np

    return np.ones(n, dtype=np.uint8)


def consume(arr: Any) -> int:
    """Touch one byte per 4 KiB page (every page is read), return a small int."""
    return int(arr[::4096].sum())


def transfer(cluster: Cluster, node_ids: dict[str, str], rounds: int) -> dict[str, Any]:
    """A 100 MiB array made on node A; the same consumer task on node B (remote), then on A (local)."""
    rt = cluster.rt
    strategies = importlib.import_module(f"{rt.__name__}.util.scheduling_strategies")

    def on(ip: str, fn: Callable[..., Any]) -> Any:
        strategy = strategies.NodeAffinitySchedulingStrategy(node_id=node_ids[ip], soft=False)
        return rt.remote(fn).options(scheduling_strategy=strategy)

    make_a, use_a, use_b = on(NODE_A, produce), on(NODE_A, consume), on(NODE_B, consume)
    warm = make_a.remote(2**20)  # workers started on both nodes, functions known, a first transfer
    assert rt.get([use_b.remote(warm), use_a.remote(warm)], timeout=GET_TIMEOUT_S) == [2**20 // 4096] * 2
    del warm
    expected = len(range(0, ARRAY_BYTES, 4096))
    remote, local = [], []
    for _ in range(rounds):
        ref = make_a.remote(ARRAY_BYTES)
        ready, _ = rt.wait([ref], timeout=GET_TIMEOUT_S, fetch_local=False)  # made, and still only on A
        assert ready, "the producer did not finish"
        t0 = time.perf_counter()
        assert rt.get(use_b.remote(ref), timeout=GET_TIMEOUT_S) == expected
        t1 = time.perf_counter()
        assert rt.get(use_a.remote(ref), timeout=GET_TIMEOUT_S) == expected
        t2 = time.perf_counter()
        remote.append(t1 - t0)
        local.append(t2 - t1)
        del ref
        time.sleep(0.2)  # let the copies be freed before the next round
    r, lo = statistics.median(remote), statistics.median(local)
    return {"transfer_remote_s": r, "transfer_local_s": lo, "transfer_mb_s": ARRAY_BYTES / r / 1e6,
            "transfer_first_mb_s": ARRAY_BYTES / remote[0] / 1e6,  # the consumer's first: into fresh memory
            "transfer_net_mb_s": ARRAY_BYTES / (r - lo) / 1e6 if r > lo else None,
            "transfer_rounds": [{"remote_s": a, "local_s": b} for a, b in zip(remote, local)]}


def where_am_i(arr: Any) -> str:
    """Touch every page of the argument; the node this ran on."""
    int(arr[::4096].sum())
    rt = sys.modules.get("ray") or sys.modules["actorlib"]  # a worker of one system imports only its own
    return rt.get_runtime_context().get_node_id()  # type: ignore[no-any-return]


def locality(cluster: Cluster, node_ids: dict[str, str], rounds: int) -> dict[str, Any]:
    """A 100 MiB array made on node A; a consumer task with the DEFAULT strategy, submitted by
    the driver (on the head's node, which has a free CPU): does it run on A, and how many
    bytes cross nodes for it? actorlib: measured (its stores' counters); Ray: no counter,
    so the array's size when the consumer ran elsewhere (the bytes it must have read)."""
    rt = cluster.rt
    strategies = importlib.import_module(f"{rt.__name__}.util.scheduling_strategies")
    on_a = strategies.NodeAffinitySchedulingStrategy(node_id=node_ids[NODE_A], soft=False)
    make_a = rt.remote(produce).options(scheduling_strategy=on_a)
    consume_anywhere = rt.remote(where_am_i)
    rt.get(consume_anywhere.remote(make_a.remote(2**20)), timeout=GET_TIMEOUT_S)  # warm-up
    placed, moved, times = [], [], []
    for _ in range(rounds):
        ref = make_a.remote(ARRAY_BYTES)
        ready, _ = rt.wait([ref], timeout=GET_TIMEOUT_S, fetch_local=False)
        assert ready, "the producer did not finish"
        time.sleep(0.5)  # the producer's lease returned, and every node's view of A's CPU fresh
        before = cluster.bytes_moved()
        t0 = time.perf_counter()
        node = rt.get(consume_anywhere.remote(ref), timeout=GET_TIMEOUT_S)
        times.append(time.perf_counter() - t0)
        after = cluster.bytes_moved()
        placed.append(node == node_ids[NODE_A])
        moved.append(after - before if before is not None and after is not None else 0 if placed[-1] else ARRAY_BYTES)
        del ref
        time.sleep(0.2)
    return {"locality_on_holder": sum(placed) / len(placed), "locality_moved_mib": statistics.median(moved) / 2**20,
            "locality_s": statistics.median(times), "locality_measured": cluster.bytes_moved() is not None,
            "locality_rounds": [{"on_holder": p, "moved": m, "s": t} for p, m, t in zip(placed, moved, times)]}


def detect_death(cluster: Cluster, node_id: str, pid: int, sig: int) -> float | None:
    """Signal the node's main process; seconds until the driver sees the node dead (None past the deadline)."""
    assert not cluster.is_dead(node_id), "the node is already dead"
    t0 = time.perf_counter()
    os.kill(pid, sig)
    deadline = t0 + cluster.detect_deadline_s
    while True:
        if cluster.is_dead(node_id):
            return time.perf_counter() - t0
        if time.perf_counter() > deadline:
            return None
        time.sleep(POLL_S)


def measure_cluster(system: str, deadline_s: float, rounds: int) -> dict[str, Any]:
    cluster = CLUSTERS[system](deadline_s)
    log(f"{system}: head at {cluster.address}, files in {cluster.tmp}")
    figures: dict[str, Any] = {"system": system, "deadline_s": deadline_s, "errors": []}
    frozen: int | None = None
    try:
        with phase(figures, "start"):
            t0 = time.perf_counter()
            cluster.start_head()
            cluster.connect()
            poll(lambda: cluster.alive_ids(), 30, "head visible to the driver")
            figures["head_start_s"] = time.perf_counter() - t0
            figures["version"] = getattr(cluster.rt, "__version__", "?")
            joins = [join_node(cluster, ip) for ip in (NODE_A, NODE_B)]
            log(f"{system}: joined " + ", ".join(f"{j['ip']} in {j['seen_s']:.3f} s" for j in joins))
            figures |= {"joins": joins, "join_s": statistics.median(j["seen_s"] for j in joins),
                        "join_cli_s": statistics.median(j["cli_s"] for j in joins)}
            node_ids = {j["ip"]: j["node_id"] for j in joins}
        if "joins" not in figures:
            return figures
        with phase(figures, "transfer"):
            figures |= transfer(cluster, node_ids, rounds)
            log(f"{system}: 100 MiB A->B {figures['transfer_remote_s']:.3f} s, "
                f"local {figures['transfer_local_s']:.3f} s ({figures['transfer_mb_s']:.0f} MB/s)")
        with phase(figures, "locality"):
            figures |= locality(cluster, node_ids, rounds)
            log(f"{system}: DEFAULT consumer of 100 MiB on A ran there {figures['locality_on_holder']:.0%} "
                f"of the time, {figures['locality_moved_mib']:.1f} MiB moved")
        with phase(figures, "kill"):
            pid = cluster.main_pid(NODE_A)
            figures["kill_detect_s"] = detect_death(cluster, node_ids[NODE_A], pid, signal.SIGKILL)
            log(f"{system}: SIGKILLed node seen dead after {figures['kill_detect_s']} s")
        with phase(figures, "freeze"):
            frozen = cluster.main_pid(NODE_B)
            figures["freeze_detect_s"] = detect_death(cluster, node_ids[NODE_B], frozen, signal.SIGSTOP)
            log(f"{system}: SIGSTOPped node seen dead after {figures['freeze_detect_s']} s")
            os.kill(frozen, signal.SIGCONT)
            frozen = None
    finally:
        if frozen is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGCONT)
        with phase(figures, "stop"), reaping():
            cluster.disconnect()
            t0 = time.perf_counter()
            cluster.stop()
            figures["stop_s"] = time.perf_counter() - t0
        # Anything the stop left is killed here, by pid, and listed.
        figures["force_killed"] = kill_everything_left()
        if not figures["errors"]:
            import shutil

            shutil.rmtree(cluster.tmp, ignore_errors=True)
        else:
            figures["files"] = cluster.tmp
    return figures


@contextlib.contextmanager
def phase(figures: dict[str, Any], name: str) -> Iterator[None]:
    """Record a failing phase in the figures and carry on with the next one."""
    try:
        yield
    except Exception as exc:
        log(f"phase {name} failed:\n{traceback.format_exc()}")
        figures["errors"].append(f"{name}: {type(exc).__name__}: {str(exc)[:2000]}")


def tcp_bandwidth(rounds: int) -> dict[str, Any]:
    """A 100 MiB buffer sent over a 127.0.0.x TCP connection between two processes.

    The sender (a forked process) ``sendall``s it in 4 MiB chunks whenever the receiver
    sends a one-byte "go"; the receiver times from "go" to the last byte landing in its
    buffer (``recv_into``). First into one preallocated buffer (one warm-up round, then
    `rounds`: the yardstick), then `rounds` more into a buffer allocated inside the
    timing (``bytearray(size)``: what receiving into fresh memory costs).
    """
    with socket.socket() as listener:
        listener.bind((NODE_B, 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        payload = b"\x01" * ARRAY_BYTES
        pid = os.fork()
        if pid == 0:  # the sender
            code = 1
            try:
                listener.close()
                with socket.create_connection((NODE_B, port), source_address=(NODE_A, 0)) as s:
                    view = memoryview(payload)
                    while s.recv(1):
                        for offset in range(0, ARRAY_BYTES, TCP_CHUNK):
                            s.sendall(view[offset:offset + TCP_CHUNK])
                code = 0
            finally:
                os._exit(code)
        conn, _ = listener.accept()
    del payload

    def receive(buf: bytearray | None) -> float:
        t0 = time.perf_counter()
        if buf is None:
            buf = bytearray(ARRAY_BYTES)
        view = memoryview(buf)
        conn.sendall(b"g")
        got = 0
        while got < ARRAY_BYTES:
            n = conn.recv_into(view[got:])
            if not n:
                raise RuntimeError("the sender closed early")
            got += n
        elapsed = time.perf_counter() - t0
        assert buf[0] == buf[-1] == 1
        return elapsed

    with conn:
        preallocated = bytearray(ARRAY_BYTES)
        receive(preallocated)
        times = [receive(preallocated) for _ in range(rounds)]
        del preallocated
        fresh = [receive(None) for _ in range(rounds)]
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise RuntimeError(f"the sender failed: status {status}")
    pre, new = statistics.median(times), statistics.median(fresh)
    return {"system": "tcp", "tcp_s": pre, "tcp_mb_s": ARRAY_BYTES / pre / 1e6, "tcp_rounds_s": times,
            "tcp_fresh_s": new, "tcp_fresh_mb_s": ARRAY_BYTES / new / 1e6, "tcp_fresh_rounds_s": fresh}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_child", description=__doc__)
    parser.add_argument("--system", required=True, choices=("actorlib", "ray", "tcp"))
    parser.add_argument("--deadline", type=float, default=90.0, help="seconds to wait for a node's death to be seen")
    parser.add_argument("--rounds", type=int, default=3, help="transfers (tcp: 5) per run; the median is kept")
    args = parser.parse_args(argv)
    out = ResultLine()
    log(f"{args.system} pid {os.getpid()}")
    if args.system == "tcp":
        figures = tcp_bandwidth(max(args.rounds, 5))
    else:
        become_subreaper()
        try:
            figures = measure_cluster(args.system, args.deadline, args.rounds)
        except ImportError as exc:
            figures = {"system": args.system, "unavailable": f"{type(exc).__name__}: {exc}"}
    figures["pid"] = os.getpid()
    out.send(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
