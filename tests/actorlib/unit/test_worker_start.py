"""A worker that cannot start tells its supervisor why, not just its exit code."""

from __future__ import annotations

import secrets
import subprocess
import sys

import psutil
import pytest
import supervisors
import trio



async def test_a_worker_whose_node_is_not_there_names_the_cause(tmp_path):
    session = tmp_path / "session"
    (session / "sockets").mkdir(parents=True)
    (session / "token").write_text(secrets.token_hex(32))
    env = {
        "ACTORLIB_SESSION_DIR": str(session),
        "ACTORLIB_WORKER_ID": secrets.token_hex(16),
        "ACTORLIB_NODE_ID": secrets.token_hex(16),
        "ACTORLIB_NODE_ADDRESS": f"unix:{session / 'sockets' / 'no-node.sock'}",  # nobody listens here
        "ACTORLIB_STORE_ADDRESS": f"unix:{session / 'sockets' / 'no-store.sock'}",
    }
    child = supervisors.ProcessChild(
        [sys.executable, "-m", "actorlib._worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            with pytest.raises(supervisors.StartError) as failed:
                await child.start(nursery)
    reason = str(failed.value)
    assert "exit code" not in reason and "no-node.sock" in reason, reason
    assert child.pid is not None and not psutil.pid_exists(child.pid)  # reaped, nothing left
