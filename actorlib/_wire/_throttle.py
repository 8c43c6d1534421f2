"""Warnings about refused and broken connections, bounded per process.

Anyone who can reach a socket can make it refuse a connection; one warning line
each would let a stranger connecting in a loop fill the disk with a node's log
(and a driver's terminal, where workers' logs are shown). A Throttle logs the
first ``burst`` warnings of each ``period`` seconds and counts the rest, saying
how many it left out with the next one it logs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any


class Throttle:
    """At most ``burst`` warnings per ``period`` seconds (thread-safe); the rest are counted."""

    def __init__(
        self, burst: int = 10, period: float = 60.0, clock: Callable[[], float] = time.monotonic, what: str = "connections"
    ) -> None:
        self.burst = burst
        self.what = what  # what the warnings are about, for the "left out" line
        self.period = period
        self._clock = clock
        self._lock = threading.Lock()
        self._window = clock()
        self._logged = 0
        self._left_out = 0

    def warning(self, logger: logging.Logger, message: str, *args: Any) -> None:
        with self._lock:
            now = self._clock()
            left_out = 0
            if now - self._window >= self.period:
                left_out, self._left_out = self._left_out, 0
                self._window, self._logged = now, 0
            if self._logged >= self.burst:
                self._left_out += 1
                return
            self._logged += 1
        if left_out:
            logger.warning("%d more warnings about %s were left out (at most %d per %gs)", left_out, self.what, self.burst, self.period)
        logger.warning(message, *args)


CONNECTIONS = Throttle()  # this process's warnings about refused, timed-out and broken connections
