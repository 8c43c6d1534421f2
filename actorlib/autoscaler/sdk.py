"""``request_resources()``: keep room in the cluster for work that has not been submitted yet."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["request_resources"]


def request_resources(num_cpus: int | None = None, bundles: Sequence[Mapping[str, float]] | None = None) -> None:
    """Ask the autoscaler to keep capacity for ``num_cpus`` CPUs and these resource bundles.

    As in Ray: the request replaces the previous one and lasts until the next
    (``request_resources(num_cpus=0)`` withdraws it). The autoscaler launches nodes until the
    cluster's *total* resources can hold every bundle (``num_cpus`` counts as that many
    ``{"CPU": 1}`` bundles), and keeps them while the request stands, within the node types'
    ``max_workers``. Returns at once; nodes come in the background. Without an autoscaler the
    request is recorded and has no effect.

    Raises:
        TypeError / ValueError: a bundle is not a mapping of resource names to non-negative numbers.
    """
    from .._core import current
    from .._wire import RequestResources

    wanted = _bundles(num_cpus, bundles)
    runtime = current()
    reply = runtime.call(runtime.head.request, lambda req: RequestResources(req=req, bundles=wanted))
    if reply.error:
        raise ValueError(reply.error)


def _bundles(num_cpus: int | None, bundles: Sequence[Mapping[str, float]] | None) -> list[dict[str, float]]:
    wanted: list[dict[str, float]] = []
    if num_cpus is not None:
        if not isinstance(num_cpus, int) or isinstance(num_cpus, bool) or num_cpus < 0:
            raise TypeError(f"request_resources(num_cpus=...) takes a non-negative int, got {num_cpus!r}")
        wanted += [{"CPU": 1.0} for _ in range(num_cpus)]
    if bundles is not None:
        if isinstance(bundles, Mapping) or not isinstance(bundles, Sequence):
            raise TypeError(f"request_resources(bundles=...) takes a list of dicts, got {bundles!r}")
        for bundle in bundles:
            wanted.append(_bundle(bundle))
    return wanted


def _bundle(bundle: object) -> dict[str, float]:
    if not isinstance(bundle, Mapping):
        raise TypeError(f"each bundle is a dict of resource name to quantity, got {bundle!r}")
    checked = {}
    for name, qty in bundle.items():
        number = isinstance(qty, (int, float)) and not isinstance(qty, bool)
        if not isinstance(name, str) or not name or not number or not 0 <= qty < math.inf:
            raise ValueError(f"bundle {dict(bundle)!r}: {name!r} needs a non-negative quantity, got {qty!r}")
        checked[name] = float(qty)
    return checked
