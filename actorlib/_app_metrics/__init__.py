"""Application metrics in one process (``actorlib.util.metrics``): the registry of what it
defined, and the reports that carry cumulative snapshots of it to the process's node.

Nothing of this is imported, and nothing runs, in a process that never defines a metric.
"""
