"""The autoscaler and cluster launcher: config, scaling policy, node providers, the head's service."""

from ._config import ClusterConfig, ConfigError, load_config, parse_config
from ._service import Autoscaler, autoscaler_spec

__all__ = ["Autoscaler", "ClusterConfig", "ConfigError", "autoscaler_spec", "load_config", "parse_config"]
