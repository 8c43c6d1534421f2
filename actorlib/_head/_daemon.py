"""The cluster's root supervisor: ``python -m actorlib._head._daemon CONFIG_JSON``.

``actorlib start --head`` runs this in the background. Its one permanent
child is the head process: if the head dies it is started again with the
same session, token and port; nodes register again and the head recovers
its durable state. Stopping (or killing) the daemon stops the head, and the
nodes then stop themselves after their grace period.
"""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import trio

import supervisors

from .._node import NodeConfig
from .._node._process import write_ready_file
from .._titles import set_title

HEAD_SHUTDOWN = 10.0
DAEMON_INTENSITY = supervisors.Intensity(max_restarts=5, within=60)


def main(argv: list[str]) -> None:
    config = msgspec.json.decode(argv[0], type=NodeConfig)
    set_title("daemon")
    supervisors.run_child(_serve, config, argv[0])


async def _serve(link: supervisors.ParentLink, config: NodeConfig, config_json: str) -> None:
    logs = Path(config.session_dir) / "logs"
    argv = [sys.executable, "-m", "actorlib._head", config_json]
    head = supervisors.ChildSpec(
        id="head",
        start=lambda: supervisors.ProcessChild(argv, stdout=logs / "head.out", stderr=logs / "head.err"),
        shutdown=HEAD_SHUTDOWN,
    )
    async with supervisors.open_supervisor([head], id="cluster-daemon", intensity=DAEMON_INTENSITY):
        write_ready_file(config.session_dir, "daemon.json", {})
        link.ready()
        await trio.sleep_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
