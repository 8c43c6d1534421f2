"""The driver: start-up (local cluster or connect) and its options."""

from ._bootstrap import ADDRESS_ENV, bootstrap_driver
from ._local import LocalCluster, start_local_cluster
from ._options import InitOptions
