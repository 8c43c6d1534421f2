"""A FIFO queue shared by drivers, tasks and actors (Ray's ``ray.util.queue``)."""

from ._errors import Empty, Full
from ._queue import Queue

__all__ = ["Empty", "Full", "Queue"]
