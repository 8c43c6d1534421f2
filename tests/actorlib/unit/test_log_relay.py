"""The node's log relay: a driver that stops reading loses lines (and is told how many),
never the node's memory; a log file that cannot be written does not stall the node."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from actorlib._node import _logs
from actorlib._node._logs import LogRelay
from actorlib._wire import Channel, CoreMessage, LogBatch, connect, serve, unix_address

TOKEN = "t"


@pytest.fixture
def directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="al-", dir="/tmp"))  # short: Unix socket paths
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def lines(count: int, start: int = 0) -> bytes:
    return b"".join(b"line %06d %s\n" % (i, b"." * 200) for i in range(start, start + count))


async def test_a_driver_that_stops_reading_loses_lines_and_is_told_how_many(directory: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(_logs, "LOG_BUDGET", 64 * 1024)
    relay = LogRelay(directory)
    subscribed = trio.Event()
    node_side: list[Channel] = []

    async def node(channel: Channel) -> None:  # the node's end of a driver's connection
        relay.subscribe("job", channel)
        node_side.append(channel)
        subscribed.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, unix_address(directory / "n.sock"), TOKEN, CoreMessage, node)
        driver = await connect(nursery, address, TOKEN, LogBatch, name="driver")
        await subscribed.wait()
        worker, pipe = trio.testing.memory_stream_one_way_pair()
        async with trio.open_nursery() as pumping:
            pumping.start_soon(relay.pump, "w-1", 7, "out", pipe)
            await worker.send_all(_logs.MARKER + b"job=job;name=chatty\n")  # what follows is the job's
            for start in range(0, 20_000, 500):  # ~4 MB of output while the driver reads nothing
                await worker.send_all(lines(500, start))
            await worker.aclose()
        sent = 20_000
        assert node_side[0].queued <= _logs.LOG_BUDGET + 200_000  # the budget, plus one batch over it
        received = []
        with trio.fail_after(30):
            while not any(line.name == "actorlib" for line in received):  # the driver reads again
                relay.tell_dropped()
                received += (await driver.receive()).lines
        notice = next(line for line in received if line.name == "actorlib")
        delivered = [line for line in received if line.name != "actorlib"]
        dropped = int(notice.text.split()[1])
        assert dropped > 0 and "dropped" in notice.text
        assert len(delivered) + dropped == sent
        assert [line.text[:11] for line in delivered] == [f"line {i:06d}" for i in range(len(delivered))]  # in order
        await driver.aclose()
        nursery.cancel_scope.cancel()
    assert (directory / "w-1-7.out").read_bytes().count(b"\n") == sent  # the file has every line


async def test_a_log_file_that_blocks_does_not_stall_the_node(directory: Path) -> None:
    fifo = directory / "w-2-8.out"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the file "opens", but nobody drains it
    keep_open = os.open(fifo, os.O_WRONLY)  # so that reading waits for data, never sees an end
    relay = LogRelay(directory)
    loop_alive = threading.Event()
    gave_up: list[bool] = []
    drained: list[bytes] = []

    def drain_when_told() -> None:
        """The disk comes back once the node's loop shows it runs while the write waits
        (or after 10 s, if the loop itself is stuck in the write)."""
        gave_up.append(not loop_alive.wait(10))
        os.set_blocking(reader, True)
        while b"".join(drained).count(b"\n") < 2000:
            drained.append(os.read(reader, 1 << 16))

    drainer = threading.Thread(target=drain_when_told)
    drainer.start()
    try:
        async with trio.open_nursery() as nursery:
            worker, pipe = trio.testing.memory_stream_one_way_pair()
            nursery.start_soon(relay.pump, "w-2", 8, "out", pipe)
            await worker.send_all(lines(2000))  # ~420 KB: more than the FIFO holds
            await trio.testing.wait_all_tasks_blocked()  # the pump waits on its write...
            loop_alive.set()  # ...and the loop still runs
            await worker.aclose()
    finally:
        loop_alive.set()
        drainer.join(30)
        os.close(keep_open)
        os.close(reader)
    assert gave_up == [False]
    assert b"".join(drained).count(b"\n") == 2000
