"""What a node process is told at start: its session, identity and resources."""

from __future__ import annotations

from pathlib import Path

import msgspec

from .. import _ids
from .._wire import unix_address


class NodeConfig(msgspec.Struct, kw_only=True):
    """Settings of one node (passed as JSON on the node process's command line)."""

    session_dir: str
    node_id: str  # hex
    resources: dict[str, float]
    object_store_memory: int
    ip: str = "127.0.0.1"
    is_head: bool = True
    idle_worker_timeout: float = 10.0
    head_address: str = ""
    tcp: bool = False  # also listen on ``ip`` (a multi-node cluster)
    head_port: int = 0  # the head's TCP port (head process with tcp only)
    token_file: str = ""  # where a node process finds the cluster token (default: its session's)
    grace: float = 10.0  # seconds a node process may lose the head before it stops itself
    heartbeat: float = 0.5
    node_timeout: float = 4.0
    gpu_ids: list[str] = []  # the ids behind resources["GPU"] (default "0", "1", ...)
    dashboard_host: str = "127.0.0.1"  # the head's HTTP API (jobs, dashboard)
    dashboard_port: int = -1  # -1: no HTTP server; 0: any free port
    labels: dict[str, str] = {}  # ``actorlib start --labels``: the autoscaler marks its nodes' type and instance
    autoscaling_config: str = ""  # head: the cluster config whose autoscaler it runs ("": none)
    object_spilling_directory: str = ""  # where a full store spills ("": $ACTORLIB_OBJECT_SPILLING_DIRECTORY, else <session>/spill)
    object_spilling_limit: int = -1  # bytes it may spill (0: never; -1: $ACTORLIB_OBJECT_SPILLING_LIMIT, else the disk's free space less 5%)

    @property
    def short(self) -> str:
        return _ids.short(bytes.fromhex(self.node_id))

    def socket(self, name: str) -> str:
        return unix_address(Path(self.session_dir) / "sockets" / name)

    def _listen(self, unix: str, port: int = 0) -> str:
        return f"{unix};{self.ip}:{port}" if self.tcp else unix

    @property
    def address(self) -> str:
        """Where the node service listens (a Unix socket, and TCP in a multi-node cluster)."""
        return self._listen(self.socket(f"node-{self.short}.sock"))

    @property
    def store_address(self) -> str:
        return self._listen(self.socket(f"store-{self.short}.sock"))

    @property
    def head_listen(self) -> str:
        return self._listen(self.socket("head.sock"), self.head_port)

    @property
    def token_path(self) -> Path:
        return Path(self.token_file) if self.token_file else Path(self.session_dir) / "token"
