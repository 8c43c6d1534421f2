"""The cluster's root supervisor: ``python -m actorlib._head._daemon CONFIG_JSON``.

``actorlib start --head`` runs this in the background. Its one permanent
child is the head process: if the head dies it is started again with the
same session, token and port; nodes register again and the head recovers
its durable state. Stopping (or killing) the daemon stops the head, and the
nodes then stop themselves after their grace period.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import msgspec
import trio

import supervisors

from .._node import NodeConfig
from .._node._process import configure_logging, log_tree_event, write_ready_file
from .._titles import set_title

HEAD_SHUTDOWN = 10.0
DAEMON_INTENSITY = supervisors.Intensity(max_restarts=5, within=60)

log = logging.getLogger("actorlib.daemon")


def main(argv: list[str]) -> None:
    config = msgspec.json.decode(argv[0], type=NodeConfig)
    set_title("daemon")
    configure_logging()  # to logs/daemon.err: why the head ended, each time
    supervisors.run_child(_serve, config, argv[0])


async def _serve(link: supervisors.ParentLink, config: NodeConfig, config_json: str) -> None:
    logs = Path(config.session_dir) / "logs"
    argv = [sys.executable, "-m", "actorlib._head", config_json]
    head = supervisors.ChildSpec(
        id="head",
        start=lambda: supervisors.ProcessChild(argv, stdout=logs / "head.out", stderr=logs / "head.err"),
        shutdown=HEAD_SHUTDOWN,
    )
    async with supervisors.open_supervisor([head], id="cluster-daemon", intensity=DAEMON_INTENSITY, on_event=_record):
        write_ready_file(config.session_dir, "daemon.json", {})
        link.ready()
        await trio.sleep_forever()


def _record(event: supervisors.Event) -> None:
    """Say in the daemon's log when each head starts and stops; how one failed, and the
    restart, as any head or node process logs its tree (a restarted head's own log may not
    say why it ended)."""
    if event.type == "started":
        log.info("the head started (pid %s)", event.pid)
    elif event.type == "stopped" and event.exit is not None:
        log.info("the head (pid %s): %s", event.pid, event.exit.reason)
    else:
        log_tree_event(event)

if __name__ == "__main__":
    main(sys.argv[1:])
