"""``actorlib status`` (``actorlib.cluster.cluster_info``) against a head that accepts the
connection but never answers: a bounded wait, and an error naming the head."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio

from actorlib import cluster
from actorlib._driver._discovery import Found
from actorlib._wire import HeadMessage, serve, unix_address

TOKEN = "t"


async def test_status_gives_up_on_a_hung_head_naming_it(monkeypatch: Any) -> None:
    directory = Path(tempfile.mkdtemp(prefix="al-", dir="/tmp"))

    async def hung(channel: Any) -> None:
        await trio.sleep_forever()  # handshakes, then never answers

    try:
        async with trio.open_nursery() as nursery:
            head = await nursery.start(serve, unix_address(directory / "head.sock"), TOKEN, HeadMessage, hung)
            monkeypatch.setattr(cluster, "find", lambda address: Found(head, TOKEN, None))
            with pytest.raises(TimeoutError, match=f"the head at {head} did not answer within 1s"):
                await trio.to_thread.run_sync(lambda: cluster.cluster_info("x", timeout=1.0))
            nursery.cancel_scope.cancel()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
