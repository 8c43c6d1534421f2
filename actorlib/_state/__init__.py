"""The state API's pure layer: schema Structs, filters and summaries, trees, the timeline.

Imports only msgspec and ``supervisors``; the head (``_head._state_service``) and the
nodes (``_node._node_inspector``) fill these Structs, ``actorlib.util.state`` and the
CLI read them.
"""

from ._query import (
    DEFAULT_LIMIT,
    Filter,
    QueryError,
    by_id,
    check_filters,
    check_kind,
    check_limit,
    merge_tasks,
    parse_filter,
    select,
    summarize,
    to_builtins,
)
from ._schema import (
    ID_FIELDS,
    KINDS,
    SCHEMA_VERSION,
    ActorState,
    ClusterTree,
    ExitInfo,
    Intensity,
    JobState,
    ListResult,
    LogFile,
    NodeState,
    NodeTree,
    ObjectState,
    PlacementGroupState,
    ProcessNode,
    Summary,
    TaskState,
    WorkerState,
)
from ._memory import MemoryResult, NodeMemory, ObjectRefState, StoredObjectState, join_memory, reference_type
from ._app_metrics import AppMetric, AppSeries
from ._stats import LATENCY_BOUNDS, CallLatency, LatencyHistograms, NodeStats, StatsResult, merge_latency
from ._timeline import chrome_trace
from ._tree import bound, cut, from_snapshot, sort, unhealthy, walk

__all__ = [
    "DEFAULT_LIMIT", "Filter", "QueryError", "by_id", "check_filters", "check_kind", "check_limit",
    "merge_tasks", "parse_filter", "select", "summarize", "to_builtins", "ID_FIELDS", "KINDS", "SCHEMA_VERSION",
    "ActorState", "ClusterTree", "ExitInfo", "Intensity", "JobState", "ListResult", "LogFile", "NodeState",
    "NodeTree", "ObjectState", "PlacementGroupState", "ProcessNode", "Summary", "TaskState", "WorkerState",
    "AppMetric", "AppSeries", "LATENCY_BOUNDS", "CallLatency", "LatencyHistograms", "NodeStats", "StatsResult", "merge_latency",
    "MemoryResult", "NodeMemory", "ObjectRefState", "StoredObjectState", "join_memory", "reference_type",
    "chrome_trace", "bound", "cut", "from_snapshot", "sort", "unhealthy", "walk",
]  # fmt: skip
