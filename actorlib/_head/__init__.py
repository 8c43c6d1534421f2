"""The head: the cluster's root supervisor, its driver registry and cluster view."""

from .._session import head_address
