"""Custom serializers for types pickle cannot handle (Ray's ``ray.util.serialization``).

::

    actorlib.util.register_serializer(Client, serializer=lambda c: c.url, deserializer=Client)

An instance of ``Client`` sent from this process (a task's argument, a ``put``, a return
value) is then ``serializer(instance)`` on the wire and ``deserializer(that)`` where it
arrives. The deserializer travels with the data (pickled by value if it cannot be imported),
so the receiving process needs no registration of its own. As in Ray, registrations are
this process's alone: a task or actor that returns such instances registers the serializer
itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._serial._pickler import custom_reducers

__all__ = ["deregister_serializer", "register_serializer"]


def register_serializer(cls: type, *, serializer: Callable[[Any], Any], deserializer: Callable[[Any], Any]) -> None:
    """Serialize instances of ``cls`` (exactly that type, not its subclasses) as
    ``serializer(instance)``, rebuilt by ``deserializer(...)``, which must itself be
    serializable. Replaces an earlier registration for ``cls``.

    Types pickle writes itself (``int``, ``str``, ``list``, ``dict``, ...) cannot be
    overridden, as in Ray.
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_serializer() needs a class, not {type(cls).__name__} ({cls!r})")
    for name, fn in (("serializer", serializer), ("deserializer", deserializer)):
        if not callable(fn):
            raise TypeError(f"register_serializer(): {name} must be callable, not {type(fn).__name__}")

    def reduce(instance: Any) -> tuple[Callable[[Any], Any], tuple[Any]]:
        return deserializer, (serializer(instance),)

    custom_reducers[cls] = reduce


def deregister_serializer(cls: type) -> None:
    """Forget the serializer registered for ``cls`` in this process (nothing if there is none)."""
    custom_reducers.pop(cls, None)
