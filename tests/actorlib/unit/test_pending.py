"""Pending: replies resolve their own request by number; a lost connection wakes every waiter."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing

from actorlib._wire import Pending


async def test_replies_resolve_their_own_request_whatever_the_order() -> None:
    pending = Pending()
    reqs = [pending.new() for _ in range(5)]
    assert len(set(reqs)) == 5
    results: dict[int, Any] = {}

    async def waiter(req: int) -> None:
        results[req] = await pending.wait(req)

    async with trio.open_nursery() as nursery:
        for req in reqs:
            nursery.start_soon(waiter, req)
        await trio.testing.wait_all_tasks_blocked()
        for req in reversed(reqs):
            assert pending.resolve(req, f"reply to {req}")
    assert results == {req: f"reply to {req}" for req in reqs}


async def test_a_reply_that_arrives_before_the_wait_is_kept() -> None:
    pending = Pending()
    req = pending.new()
    assert pending.resolve(req, "early")
    assert await pending.wait(req) == "early"


async def test_a_reply_to_an_unknown_number_is_reported_unused() -> None:
    pending = Pending()
    assert not pending.resolve(12345, "stray")
    req = pending.new()
    assert pending.resolve(req, "once")
    assert await pending.wait(req) == "once"
    assert not pending.resolve(req, "twice")  # already consumed


async def test_fail_all_wakes_every_waiter_with_the_error() -> None:
    pending = Pending()
    error = ConnectionError("the peer is gone")
    caught: list[BaseException] = []

    async def waiter(req: int) -> None:
        try:
            await pending.wait(req)
        except ConnectionError as exc:
            caught.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(3):
            nursery.start_soon(waiter, pending.new())
        await trio.testing.wait_all_tasks_blocked()
        pending.fail_all(error)
    assert caught == [error, error, error]


async def test_a_resolved_reply_beats_a_later_failure() -> None:
    pending = Pending()
    req = pending.new()
    pending.resolve(req, "made it")
    pending.fail_all(ConnectionError("too late"))
    assert await pending.wait(req) == "made it"


async def test_a_cancelled_waiter_forgets_its_request() -> None:
    pending = Pending()
    req = pending.new()
    with trio.CancelScope() as scope:
        scope.cancel()
        await pending.wait(req)
    assert scope.cancelled_caught
    assert not pending.resolve(req, "nobody is listening")


async def test_a_request_made_after_the_failure_fails_too(autojump_clock: Any) -> None:
    pending = Pending()
    pending.fail_all(ConnectionError("the peer is gone"))
    req = pending.new()
    with trio.fail_after(3600), pytest.raises(ConnectionError):  # virtual time: no real waiting
        await pending.wait(req)
