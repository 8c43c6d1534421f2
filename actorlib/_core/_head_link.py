"""A runtime's channel to the head: actor directory and cluster requests, connected on first use."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .._wire import Channel, ClusterInfoReply, ClusterInfoRequest, HeadMessage, NodeDied, Pending

if TYPE_CHECKING:
    from ._runtime import Runtime


class HeadLink:
    """Request/reply with the head."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.channel: Channel | None = None
        self.pending = Pending()
        self._lock = trio.Lock()

    async def attach(self, channel: Channel) -> None:
        """Use an already connected channel (the driver connects during start-up)."""
        self.channel = channel
        self.rt.nursery.start_soon(self._read, channel)

    async def request(self, make: Callable[[int], Any], sent: trio.Event | None = None) -> Any:
        """Send ``make(req)`` and return the head's reply. Raises ConnectionError.

        ``sent`` is set as soon as the request is written (requests keep their order).
        """
        channel = await self._connected()
        req = self.pending.new()
        channel.send_nowait(make(req))
        if sent is not None:
            sent.set()
        return await self.pending.wait(req)

    async def cluster(self) -> ClusterInfoReply:
        return await self.request(lambda req: ClusterInfoRequest(req=req))  # type: ignore[no-any-return]

    async def _connected(self) -> Channel:
        async with self._lock:
            if self.channel is None or self.channel.closed:
                address = self.rt.identity.head_address
                if not address:
                    raise ConnectionError("this process does not know the head's address")
                self.pending = Pending()
                try:
                    channel = await self.rt.connect(address, HeadMessage)
                except OSError as exc:
                    raise ConnectionError(f"cannot reach the head at {address}: {exc}") from exc
                await self.attach(channel)
            assert self.channel is not None
            return self.channel

    async def _read(self, channel: Channel) -> None:
        pending = self.pending
        try:
            async for message in channel:
                if isinstance(message, NodeDied):
                    self.rt.submitter.node_died(message.node_id)
                elif getattr(message, "req", None) is not None:
                    pending.resolve(message.req, message)
        finally:
            pending.fail_all(ConnectionError("lost the connection to the head"))
            await channel.aclose()
