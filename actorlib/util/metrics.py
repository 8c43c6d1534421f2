"""Application metrics, with Ray's API (``ray.util.metrics``): Counter, Gauge, Histogram.

Define them anywhere (a driver, a task, an actor, sync or async) and record into them;
each process keeps cumulative values per tag combination and reports them to its node
(at most every 2 s, ``ACTORLIB_METRICS_REPORT_PERIOD``, and once more when it stops), and
the head's ``GET /metrics`` serves them under their own names, with the tag keys as labels
plus ``node_id`` and ``node_ip`` (docs/dashboard.md, "Application metrics")::

    from actorlib.util.metrics import Counter

    requests = Counter("app_requests", description="Requests served", tag_keys=("route",))
    requests.inc(tags={"route": "/"})

Differences from Ray 2.60, deliberate (a clear error rather than a metric that silently
goes nowhere): an invalid name raises ValueError (Ray warns and discards the metric); a
record with a tag key the metric does not declare raises ValueError (Ray ignores it);
histogram boundaries must increase; recorded values must be finite; tag keys must be
Prometheus label names, other than ``node_id`` and ``node_ip`` (and ``le`` for histograms).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from .._app_metrics._registry import Family, registry
from .._state._app_metrics import MAX_TAG_KEYS, MAX_TEXT, boundaries_problem, name_problem, tag_key_problem

__all__ = ["Counter", "Gauge", "Histogram", "Metric"]


class Metric:
    """What Counter, Gauge and Histogram share: name, description, tag keys, default tags."""

    _kind = ""

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        problem = name_problem(name)
        if problem:
            raise ValueError(problem)
        if not isinstance(description, str):
            raise TypeError(f"description must be str, got {type(description)}.")
        self._name = name
        self._description = description[:MAX_TEXT]
        self._default_tags: dict[str, str] = {}
        self._tag_keys = tag_keys or tuple()
        if not isinstance(self._tag_keys, tuple):
            raise TypeError(f"tag_keys should be a tuple type, got: {type(self._tag_keys)}")
        for key in self._tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
            problem = tag_key_problem(self._kind, key)
            if problem:
                raise ValueError(problem)
        if len(set(self._tag_keys)) != len(self._tag_keys):
            raise ValueError(f"tag_keys has a key more than once: {self._tag_keys}")
        if len(self._tag_keys) > MAX_TAG_KEYS:
            raise ValueError(f"a metric has at most {MAX_TAG_KEYS} tag keys, got {len(self._tag_keys)}")
        if ":" in name:
            warnings.warn(
                f"Metric name {name} contains a : character, which is no longer allowed. "
                "Please migrate to the new metric name format. This will be an error in the future.",
                FutureWarning,
                stacklevel=3,
            )
        self._default_key: tuple[str, ...] | None = () if not self._tag_keys else None
        self._family: Family | None = None

    def _define(self, boundaries: tuple[float, ...] = ()) -> None:
        self._family = registry().define(self._name, self._kind, self._description, self._tag_keys, boundaries)

    def set_default_tags(self, default_tags: dict[str, str]) -> Metric:
        """Tags used by every record that does not give its own; returns the metric itself."""
        for key, val in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(val, str):
                raise TypeError(f"Tag values must be str, got {type(val)}.")
            _check_length(val)
        self._default_tags = default_tags
        missing = [key for key in self._tag_keys if key not in default_tags]
        self._default_key = None if missing else tuple(default_tags[key] for key in self._tag_keys)
        return self

    def _record(self, value: float, tags: dict[str, str] | None = None) -> None:
        if not math.isfinite(value):
            raise ValueError(f"value must be a finite number, got {value}")
        key = self._default_key if not tags else None
        if key is None:
            key = self._key(tags)
        assert self._family is not None
        self._family.record(key, float(value))

    def _key(self, tags: dict[str, str] | None) -> tuple[str, ...]:
        """The series' tag values in tag_keys order: ``tags`` over the default tags, all checked."""
        if tags:  # the common case first: every key given once, known, with a str value
            final = {**self._default_tags, **tags} if self._default_tags else tags
            key = tuple(map(final.get, self._tag_keys))
            if len(final) == len(key):
                for val in key:
                    if type(val) is not str or len(val) > MAX_TEXT:
                        break
                else:
                    return key  # type: ignore[return-value]
        return self._checked_key(tags)

    def _checked_key(self, tags: dict[str, str] | None) -> tuple[str, ...]:
        """``_key`` the slow way, raising what Ray raises for what is wrong."""
        if tags:
            for key, val in tags.items():
                if not isinstance(val, str):
                    raise TypeError(f"Tag values must be str, got {type(val)}.")
                if key not in self._tag_keys:
                    raise ValueError(f"Unrecognized tag key {key}.")
                _check_length(val)
            final = {**self._default_tags, **tags}
        else:
            final = self._default_tags
        missing = [key for key in self._tag_keys if key not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        return tuple(final[key] for key in self._tag_keys)

    @property
    def info(self) -> dict[str, Any]:
        """The metric's name, description, tag keys and default tags."""
        return {
            "name": self._name,
            "description": self._description,
            "tag_keys": self._tag_keys,
            "default_tags": self._default_tags,
        }

    def __reduce__(self) -> Any:  # a metric captured by a task or an actor is defined again where it runs
        return self.__class__, (self._name, self._description, self._tag_keys)


def _check_length(value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ValueError(f"Tag values are at most {MAX_TEXT} characters, got {len(value)}.")


def _check_number(value: Any) -> None:
    if not isinstance(value, (int, float)):
        raise TypeError(f"value must be int or float, got {type(value)}.")


class Counter(Metric):
    """A cumulative metric that only goes up (Prometheus' counter; exported as ``<name>_total``)."""

    _kind = "counter"

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)
        self._define()

    def inc(self, value: float = 1.0, tags: dict[str, str] | None = None) -> None:
        """Add ``value`` (> 0, default 1); ``tags`` override the default tags."""
        _check_number(value)
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        self._record(value, tags)


class Gauge(Metric):
    """The last value set, which may go up or down (Prometheus' gauge)."""

    _kind = "gauge"

    def __init__(self, name: str, description: str = "", tag_keys: tuple[str, ...] | None = None) -> None:
        super().__init__(name, description, tag_keys)
        self._define()

    def set(self, value: float | None, tags: dict[str, str] | None = None) -> None:
        """Set the gauge to ``value`` (``None``: do nothing); ``tags`` override the default tags."""
        if value is None:
            return
        _check_number(value)
        self._record(value, tags)


class Histogram(Metric):
    """Observations counted in buckets (Prometheus' histogram): quantiles of latencies, sizes, ..."""

    _kind = "histogram"

    def __init__(
        self,
        name: str,
        description: str = "",
        boundaries: list[float] | None = None,
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, description, tag_keys)
        problem = boundaries_problem(boundaries)
        if problem:
            raise ValueError(problem)
        assert boundaries is not None
        self.boundaries = boundaries
        self._define(tuple(float(b) for b in boundaries))

    def observe(self, value: float, tags: dict[str, str] | None = None) -> None:
        """Count ``value`` in its bucket; ``tags`` override the default tags."""
        _check_number(value)
        self._record(value, tags)

    def __reduce__(self) -> Any:
        return Histogram, (self._name, self._description, self.boundaries, self._tag_keys)

    @property
    def info(self) -> dict[str, Any]:
        info = super().info
        info.update({"boundaries": self.boundaries})
        return info
