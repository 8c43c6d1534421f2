"""The queue's exceptions: also the standard library's ``queue.Empty`` / ``queue.Full``."""

from __future__ import annotations

import queue


class Empty(queue.Empty):
    """get() found no item: the queue was empty (``block=False``), or stayed empty until the timeout."""


class Full(queue.Full):
    """put() found no room: the queue was full (``block=False``), or stayed full until the timeout."""
