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

    @property
    def short(self) -> str:
        return _ids.short(bytes.fromhex(self.node_id))

    def socket(self, name: str) -> str:
        return unix_address(Path(self.session_dir) / "sockets" / name)

    @property
    def address(self) -> str:
        return self.socket(f"node-{self.short}.sock")

    @property
    def store_address(self) -> str:
        return self.socket(f"store-{self.short}.sock")
