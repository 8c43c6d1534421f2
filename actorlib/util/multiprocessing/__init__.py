"""``multiprocessing.Pool`` over actors (Ray's ``ray.util.multiprocessing``)."""

from multiprocessing import TimeoutError

from ._async_result import AsyncResult
from ._imap import IMapIterator
from ._pool import Pool

__all__ = ["AsyncResult", "IMapIterator", "Pool", "TimeoutError"]
