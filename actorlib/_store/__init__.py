"""The per-node shared-memory object store: layout, Trio server, blocking client."""

from __future__ import annotations

import os

from ._client import ObjectExistsError, StoreClient
from ._layout import ObjectFormatError, object_pieces, object_size, read_object, write_object
from ._remote import RemoteReader
from ._server import ObjectStore

__all__ = [
    "ObjectExistsError",
    "ObjectFormatError",
    "ObjectStore",
    "RemoteReader",
    "StoreClient",
    "default_capacity",
    "object_pieces",
    "object_size",
    "read_object",
    "write_object",
]

DEFAULT_CAPACITY_FRACTION = 0.3


def default_capacity() -> int:
    """The store capacity a node uses unless told otherwise: 30% of physical memory, in bytes.

    Objects are memfds, i.e. anonymous shared memory charged to the
    processes' memory, not files in /dev/shm, so the free space of /dev/shm
    does not bound the store and is not consulted. Neither is a cgroup
    memory limit: pass an explicit capacity when running in a constrained
    container.
    """
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return int(physical * DEFAULT_CAPACITY_FRACTION)
