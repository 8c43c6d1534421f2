"""Accelerator types for ``accelerator_type=`` (Ray's ``ray.util.accelerators``).

``@actorlib.remote(accelerator_type=NVIDIA_TESLA_V100)`` runs the task or actor on a node
that offers the custom resource ``accelerator_type:V100`` (``actorlib start --resources
'{"accelerator_type:V100": 1}'``); nodes do not detect their accelerator type by themselves.
The names exported here are Ray 2.60's (plus ``NVIDIA_A100_40G``/``NVIDIA_A100_80G``, which
Ray lists in ``__all__`` but does not import); the submodule ``accelerators`` has every type
Ray names. ``NVIDIA_TESLA_A100`` is deprecated for ``NVIDIA_A100``, as in Ray. Ray's ``tpu``
(TPU slice utilities) is not here.
"""

import warnings
from typing import Any

from . import accelerators
from .accelerators import (
    AMD_INSTINCT_MI100,
    AMD_INSTINCT_MI210,
    AMD_INSTINCT_MI250,
    AMD_INSTINCT_MI300x,
    AMD_RADEON_HD_7900,
    AMD_RADEON_R9_200_HD_7900,
    APPLE_M1,
    APPLE_M1_MAX,
    APPLE_M1_PRO,
    APPLE_M1_ULTRA,
    APPLE_M2,
    APPLE_M2_MAX,
    APPLE_M2_PRO,
    APPLE_M2_ULTRA,
    APPLE_M3,
    APPLE_M3_MAX,
    APPLE_M3_PRO,
    APPLE_SILICON,
    AWS_NEURON_CORE,
    GOOGLE_TPU_V2,
    GOOGLE_TPU_V3,
    GOOGLE_TPU_V4,
    GOOGLE_TPU_V5LITEPOD,
    GOOGLE_TPU_V5P,
    GOOGLE_TPU_V6E,
    GOOGLE_TPU_V7X,
    INTEL_GAUDI,
    INTEL_MAX_1100,
    INTEL_MAX_1550,
    METAX_C500,
    METAX_C550,
    MOBILINT_ARIES,
    MOBILINT_REGULUS,
    NVIDIA_A100,
    NVIDIA_A100_40G,
    NVIDIA_A100_80G,
    NVIDIA_H100,
    NVIDIA_L4,
    NVIDIA_TESLA_A10G,
    NVIDIA_TESLA_K80,
    NVIDIA_TESLA_P4,
    NVIDIA_TESLA_P100,
    NVIDIA_TESLA_T4,
    NVIDIA_TESLA_V100,
    AMD_INSTINCT_MI250x,
)

__all__ = [
    "NVIDIA_TESLA_V100",
    "NVIDIA_TESLA_P100",
    "NVIDIA_TESLA_T4",
    "NVIDIA_TESLA_P4",
    "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_A10G",
    "NVIDIA_L4",
    "NVIDIA_A100",
    "NVIDIA_A100_40G",
    "NVIDIA_A100_80G",
    "NVIDIA_H100",
    "INTEL_MAX_1550",
    "INTEL_MAX_1100",
    "INTEL_GAUDI",
    "AMD_INSTINCT_MI100",
    "AMD_INSTINCT_MI210",
    "AMD_INSTINCT_MI250",
    "AMD_INSTINCT_MI250x",
    "AMD_INSTINCT_MI300x",
    "AMD_RADEON_R9_200_HD_7900",
    "AMD_RADEON_HD_7900",
    "AWS_NEURON_CORE",
    "GOOGLE_TPU_V2",
    "GOOGLE_TPU_V3",
    "GOOGLE_TPU_V4",
    "GOOGLE_TPU_V5P",
    "GOOGLE_TPU_V5LITEPOD",
    "GOOGLE_TPU_V6E",
    "GOOGLE_TPU_V7X",
    "METAX_C500",
    "METAX_C550",
    "MOBILINT_ARIES",
    "MOBILINT_REGULUS",
    "APPLE_M1",
    "APPLE_M1_PRO",
    "APPLE_M1_MAX",
    "APPLE_M1_ULTRA",
    "APPLE_M2",
    "APPLE_M2_PRO",
    "APPLE_M2_MAX",
    "APPLE_M2_ULTRA",
    "APPLE_M3",
    "APPLE_M3_PRO",
    "APPLE_M3_MAX",
    "APPLE_SILICON",
    # Deprecated
    "NVIDIA_TESLA_A100",
]


def __getattr__(name: str) -> Any:
    if name == "NVIDIA_TESLA_A100":
        warnings.warn("NVIDIA_TESLA_A100 is deprecated, use NVIDIA_A100 instead (as in Ray)", DeprecationWarning, stacklevel=2)
        return NVIDIA_A100
    if name == "tpu":
        raise AttributeError("actorlib has no TPU utilities (Ray's ray.util.accelerators.tpu, ray.util.tpu)")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
