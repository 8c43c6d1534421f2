"""Warnings about connections are bounded: a stranger connecting in a loop cannot fill a log."""

from __future__ import annotations

import logging

import pytest

from actorlib._wire._throttle import Throttle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_logged_the_rest_counted_and_reported_with_the_next_window(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    throttle = Throttle(burst=3, period=60.0, clock=clock)
    logger = logging.getLogger("test.throttle")
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for i in range(20):
            throttle.warning(logger, "refused %d", i)
        assert caplog.messages == ["refused 0", "refused 1", "refused 2"]
        clock.now += 59.9
        throttle.warning(logger, "refused %d", 20)
        assert len(caplog.messages) == 3  # the same window
        clock.now += 0.1
        throttle.warning(logger, "refused %d", 21)
        assert caplog.messages[3:] == ["18 more warnings about connections were left out (at most 3 per 60s)", "refused 21"]
        throttle.warning(logger, "refused %d", 22)
        assert caplog.messages[-1] == "refused 22" and len(caplog.messages) == 6  # nothing left out: no note
