"""A node whose head falls silent (hung, not gone) fences itself after its grace period, as
for a head it lost: it must not wait on it for ever."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import psutil
import trio

from actorlib._wire import HeadMessage, NodeRegistered, RegisterNode, serve, write_token

from .conftest import free_port, wait_gone

TOKEN = "a-token-for-a-fake-head"


async def test_a_node_whose_head_hangs_stops_itself_after_its_grace():
    tmp = Path(tempfile.mkdtemp(prefix="sh-", dir="/tmp"))
    token_file = tmp / "token"
    write_token(token_file, TOKEN)
    registered = trio.Event()

    async def hung_head(channel) -> None:  # registers the node, then never says anything again
        hello = await channel.receive()
        assert isinstance(hello, RegisterNode)
        channel.send_nowait(NodeRegistered(req=hello.req, period=0.5))
        registered.set()
        await trio.sleep_forever()

    node_pid = None
    try:
        async with trio.open_nursery() as nursery:
            address = await nursery.start(serve, f"127.0.0.1:{free_port()}", TOKEN, HeadMessage, hung_head)
            started = await trio.run_process(
                [sys.executable, "-m", "actorlib", "start", "--address", address, "--token-file", str(token_file),
                 "--node-ip-address", "127.0.0.2", "--num-cpus", "1", "--grace", "2"],
                env={**os.environ, "ACTORLIB_TMPDIR": str(tmp)}, capture_stdout=True, capture_stderr=True,
            )  # fmt: skip
            assert started.returncode == 0, started.stderr.decode()
            node_pid = json.loads(next(tmp.glob("actorlib-*/session_2*/node.json")).read_text())["pid"]
            tree = [node_pid] + [child.pid for child in psutil.Process(node_pid).children(recursive=True)]
            await registered.wait()
            with trio.fail_after(60):  # grace 2 s: fenced well before this
                while psutil.pid_exists(node_pid) and psutil.Process(node_pid).status() != psutil.STATUS_ZOMBIE:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        assert not await trio.to_thread.run_sync(wait_gone, tree)  # its zygote and workers went with it
        node_err = next(tmp.glob("actorlib-*/session_2*/logs/node.err")).read_text()
        assert "said nothing for 2s" in node_err and "cut off from the head" in node_err
        assert "Traceback" not in node_err, node_err  # it exits with its status (3), not a crash
    finally:
        if node_pid is not None and psutil.pid_exists(node_pid):
            os.killpg(node_pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
