"""The walkthrough in docs/cluster.md, run command by command on loopback addresses."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path


from ..integration.conftest import processes_mentioning

ROOT = Path(__file__).resolve().parents[3]
GUIDE = ROOT / "docs" / "cluster.md"


def walkthrough() -> list[str]:
    text = GUIDE.read_text()
    block = re.search(r"<!-- walkthrough -->\s*```sh\n(.*?)```\s*<!-- /walkthrough -->", text, re.S)
    assert block, "docs/cluster.md has no walkthrough block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_guides_commands_work_as_written():
    commands = walkthrough()
    assert commands[0].startswith("actorlib start --head") and commands[-1] == "actorlib stop"
    port = str(free_port())
    tmp = tempfile.mkdtemp(prefix="g-", dir="/tmp")  # short, or sessions go to the shared /tmp/actorlib-<uid> instead
    bin_dir = os.path.dirname(sys.executable)  # where `actorlib` and `python` are installed
    env = {**os.environ, "ACTORLIB_TMPDIR": tmp, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    outputs = []
    try:
        for command in commands:
            command = command.replace("6380", port)
            result = subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
            assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
            outputs.append(result.stdout)
            if len(outputs) == 1:  # the head's session is in the test's own directory: nothing else is there
                assert list(Path(tmp).glob("actorlib-*/session_2*/head.json")), f"no session in {tmp}"
    finally:
        if not outputs or not outputs[-1].startswith("Stopped"):
            subprocess.run(["bash", "-c", "actorlib stop --force"], env=env, capture_output=True, timeout=60)
    head, node, status, example, stop = outputs
    assert f"address:    127.0.0.1:{port}" in head
    assert "joined to 127.0.0.1" in node
    assert "Nodes: 2 healthy, 0 unresponsive, 0 dead" in status and "node " in status and "at 127.0.0.2" in status
    assert "2 node(s):" in example and "STRICT_SPREAD placement group" in example and "cluster ok" in example
    assert stop.startswith("Stopped")
    assert processes_mentioning(tmp) == []
    shutil.rmtree(tmp, ignore_errors=True)
