"""The autoscaler's Python API, as in Ray (``ray.autoscaler.sdk``): ask for capacity ahead of demand."""

from .sdk import request_resources

__all__ = ["request_resources"]
