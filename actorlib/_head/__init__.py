"""The head: the cluster's root supervisor, its driver registry and cluster view."""

from ._process import head_address
