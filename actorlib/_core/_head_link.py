"""A runtime's channel to the head: actor directory and cluster requests, connected on first use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import trio

from .._wire import Channel, ClaimOwnership, ConnectionFailed, ClusterInfoReply, ClusterInfoRequest, HeadMessage, NodeDied, NodeMember, Pending

if TYPE_CHECKING:
    from ._runtime import Runtime

log = logging.getLogger("actorlib.core")
RECONNECT_BACKOFF = (0.1, 2.0)  # seconds between attempts to reach a head that went away: first, most
REQUEST_TIMEOUT = 30.0  # seconds the head has to answer a request (or, during a long wait, a ping)
PING_EVERY = 5.0  # seconds between pings while a long wait (WaitActor, ...) is pending


class HeadLink:
    """Request/reply with the head."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.channel: Channel | None = None
        self.pending = Pending()
        self._lock = trio.Lock()
        self.reconnects = 0  # times this link came back after losing the head (and claimed)
        self._long_waits = 0
        # Set (and replaced) when a long wait begins or a channel closes: the watchers wait on
        # it rather than on a timer, so an idle process with a head channel sleeps.
        self._wake_watchers = trio.Event()
        self.timeout = REQUEST_TIMEOUT

    async def attach(self, channel: Channel) -> None:
        """Use an already connected channel (the driver connects during start-up). A worker or
        actor says first which node it goes with: when the head declares that node dead, it
        waits for this process to stop before it tells anyone else (decision 0016)."""
        if self.rt.on_fenced is not None:
            try:
                channel.send_nowait(NodeMember(node_id=self.rt.identity.node_id))
            except trio.ClosedResourceError:
                pass  # closed already: its reader sees that, and the first request fails as it should
        self.channel = channel
        self.rt.nursery.start_soon(self._read, channel)
        self.rt.nursery.start_soon(self._watch, channel)

    async def request(self, make: Callable[[int], Any], sent: trio.Event | None = None, *, long: bool = False) -> Any:
        """Send ``make(req)`` and return the head's reply. Cancellable.

        ``sent`` is set as soon as the request is written (requests keep their order).
        The head has REQUEST_TIMEOUT seconds to answer; a ``long`` request, answered only
        once something happens (an actor is ALIVE, a placement group placed), waits as long
        as the head answers pings instead.

        Raises ConnectionError, naming the head's address: it cannot be reached, its
        connection closed, or it answered nothing in time (a hung head).
        """
        channel = await self._connected()
        pending = self.pending
        req = pending.new()
        try:
            channel.send_nowait(make(req))
        except trio.ClosedResourceError as exc:
            raise ConnectionError(f"lost the connection to the head at {self._address()}: {exc}") from exc
        if sent is not None:
            sent.set()
        if long:
            self._long_waits += 1
            if self._long_waits == 1:
                self._pulse()
            try:
                return await pending.wait(req)
            finally:
                self._long_waits -= 1
        with trio.move_on_after(self.timeout):
            return await pending.wait(req)
        raise ConnectionError(f"the head at {self._address()} did not answer within {self.timeout:g}s (is it hung?)")

    def _address(self) -> str:
        return self.rt.identity.head_address or "(unknown)"

    def _pulse(self) -> None:
        self._wake_watchers.set()
        self._wake_watchers = trio.Event()

    async def _watch(self, channel: Channel) -> None:
        """While long waits are pending on ``channel``, ping the head every PING_EVERY; if it
        stops answering, fail them and close the channel (a hung head must not hang its
        callers for ever). With none pending it sleeps without a timer until one begins or
        the channel closes: an idle worker (an actor on a worker node listens to the head
        from the start) makes no system call."""
        while not channel.closed:
            if not self._long_waits:
                await self._wake_watchers.wait()
                continue
            await trio.sleep(PING_EVERY)
            if not self._long_waits or channel is not self.channel or channel.closed:
                continue
            try:
                await self.request(lambda req: ClusterInfoRequest(req=req))
            except ConnectionError as exc:
                log.warning("giving up on the head: %s", exc)
                self.pending.fail_all(ConnectionError(f"the head at {self._address()} stopped answering: {exc}"))
                await channel.aclose()
                return

    async def listen(self) -> None:
        """Connect now and make the head count this process among its clients, so it hears node
        deaths (a worker must hear its own node's). Retried until the head answers once; after
        that the link reconnects by itself whenever the head comes back."""
        delay, most = RECONNECT_BACKOFF
        while not self.rt.closed:
            try:
                await self.request(lambda req: ClusterInfoRequest(req=req))
                return
            except ConnectionError as exc:
                log.debug("the head is not answering yet: %s", exc)
                await trio.sleep(delay)
                delay = min(delay * 2, most)

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
                except ConnectionFailed as exc:
                    raise ConnectionError(f"cannot reach the head at {address}: {exc}") from exc
                await self.attach(channel)
            assert self.channel is not None
            return self.channel

    async def _read(self, channel: Channel) -> None:
        pending = self.pending
        try:
            async for message in channel:
                if isinstance(message, NodeDied):
                    if message.node_id == self.rt.identity.node_id:
                        if self.rt.on_fenced is not None:  # a worker: it goes with its node
                            self.rt.on_fenced(message.reason)
                        elif self.rt.identity.mode == "driver":  # a driver moves to a live node
                            self.rt.nursery.start_soon(self._rehome)
                    self.rt.peers.node_died(message.address)
                    self.rt.submitter.node_died(message.node_id)
                elif getattr(message, "req", None) is not None:
                    pending.resolve(message.req, message)
        finally:
            pending.fail_all(ConnectionError(f"lost the connection to the head at {self._address()}"))
            await channel.aclose()
            self._pulse()  # its watcher ends
            if channel is self.channel and not self.rt.closed:
                self.rt.nursery.start_soon(self._come_back)

    async def _come_back(self) -> None:
        """The head went away (it is restarted by its daemon): reconnect at once rather than at
        the next request, so that node deaths are heard again, and claim what we own."""
        delay, most = RECONNECT_BACKOFF
        while not self.rt.closed:
            try:
                channel = await self._connected()
            except Exception as exc:  # never let this crash the runtime: try again
                log.debug("the head is still away: %s", exc)
                await trio.sleep(delay)
                delay = min(delay * 2, most)
                continue
            actor_ids, pg_ids = self.rt.actors.owned_alive(), sorted(self.rt.owned_groups)
            try:
                channel.send_nowait(ClaimOwnership(actor_ids=actor_ids, pg_ids=pg_ids))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # gone again: its _read starts another round
            self.reconnects += 1
            log.info("reconnected to the head; claimed %d actors, %d placement groups", len(actor_ids), len(pg_ids))
            local = self.rt.peers.local
            if self.rt.identity.mode == "driver" and (local is None or local.channel.closed):
                await self._rehome()  # its node lived in the head's process, and went with it
            return

    async def _rehome(self) -> None:
        """Move this driver to a live node (its own died), asking the head until it names one."""
        delay, most = RECONNECT_BACKOFF
        while not self.rt.closed:
            try:
                if await self.rt.rehome():
                    return
            except ConnectionError as exc:
                log.debug("cannot move to another node yet: %s", exc)
            await trio.sleep(delay)
            delay = min(delay * 2, most)
