"""``actorlib.util.accelerators`` (Ray's ``ray.util.accelerators``): the accelerator type
constants for ``accelerator_type=``, with Ray 2.60's names and values, and what they select."""

from __future__ import annotations

import warnings

import pytest

import actorlib
from actorlib.exceptions import InfeasibleResourcesError

# Every type Ray 2.60 names in ray/util/accelerators/accelerators.py, with its value.
RAY_2_60 = {
    "AMD_INSTINCT_MI100": "AMD-Instinct-MI100",
    "AMD_INSTINCT_MI210": "AMD-Instinct-MI210",
    "AMD_INSTINCT_MI250": "AMD-Instinct-MI250X-MI250",
    "AMD_INSTINCT_MI250x": "AMD-Instinct-MI250X",
    "AMD_INSTINCT_MI300A": "AMD-Instinct-MI300A",
    "AMD_INSTINCT_MI300x": "AMD-Instinct-MI300X-OAM",
    "AMD_INSTINCT_MI300x_HF": "AMD-Instinct-MI300X-HF",
    "AMD_INSTINCT_MI308x": "AMD-Instinct-MI308X",
    "AMD_INSTINCT_MI325x": "AMD-Instinct-MI325X-OAM",
    "AMD_INSTINCT_MI350x": "AMD-Instinct-MI350X-OAM",
    "AMD_INSTINCT_MI355x": "AMD-Instinct-MI355X-OAM",
    "AMD_RADEON_HD_7900": "AMD-Radeon-HD-7900",
    "AMD_RADEON_R9_200_HD_7900": "AMD-Radeon-R9-200-HD-7900",
    "APPLE_M1": "M1",
    "APPLE_M1_MAX": "M1-Max",
    "APPLE_M1_PRO": "M1-Pro",
    "APPLE_M1_ULTRA": "M1-Ultra",
    "APPLE_M2": "M2",
    "APPLE_M2_MAX": "M2-Max",
    "APPLE_M2_PRO": "M2-Pro",
    "APPLE_M2_ULTRA": "M2-Ultra",
    "APPLE_M3": "M3",
    "APPLE_M3_MAX": "M3-Max",
    "APPLE_M3_PRO": "M3-Pro",
    "APPLE_SILICON": "Apple-Silicon",
    "AWS_NEURON_CORE": "aws-neuron-core",
    "FURIOSA_RNGD": "FURIOSA_RNGD",
    "GOOGLE_TPU_V2": "TPU-V2",
    "GOOGLE_TPU_V3": "TPU-V3",
    "GOOGLE_TPU_V4": "TPU-V4",
    "GOOGLE_TPU_V5LITEPOD": "TPU-V5LITEPOD",
    "GOOGLE_TPU_V5P": "TPU-V5P",
    "GOOGLE_TPU_V6E": "TPU-V6E",
    "GOOGLE_TPU_V7X": "TPU-V7X",
    "HUAWEI_NPU_910B": "Ascend910B",
    "HUAWEI_NPU_910B4": "Ascend910B4",
    "INTEL_GAUDI": "Intel-GAUDI",
    "INTEL_MAX_1100": "Intel-GPU-Max-1100",
    "INTEL_MAX_1550": "Intel-GPU-Max-1550",
    "METAX_C500": "MXC500",
    "METAX_C550": "MXC550",
    "MOBILINT_ARIES": "MOBILINT_ARIES",
    "MOBILINT_REGULUS": "MOBILINT_REGULUS",
    "NVIDIA_A100": "A100",
    "NVIDIA_A100_40G": "A100-40G",
    "NVIDIA_A100_80G": "A100-80G",
    "NVIDIA_B200": "B200",
    "NVIDIA_B300": "B300",
    "NVIDIA_GB200": "GB200",
    "NVIDIA_GB300": "GB300",
    "NVIDIA_H100": "H100",
    "NVIDIA_H20": "H20",
    "NVIDIA_H200": "H200",
    "NVIDIA_L4": "L4",
    "NVIDIA_L40S": "L40S",
    "NVIDIA_RTX_PRO_6000": "RTX-PRO-6000",
    "NVIDIA_TESLA_A10G": "A10G",
    "NVIDIA_TESLA_K80": "K80",
    "NVIDIA_TESLA_P100": "P100",
    "NVIDIA_TESLA_P4": "P4",
    "NVIDIA_TESLA_T4": "T4",
    "NVIDIA_TESLA_V100": "V100",
}
# What `from ray.util.accelerators import *` names in Ray 2.60 (its __all__), but "tpu".
RAY_2_60_ALL = [
    "NVIDIA_TESLA_V100", "NVIDIA_TESLA_P100", "NVIDIA_TESLA_T4", "NVIDIA_TESLA_P4", "NVIDIA_TESLA_K80",
    "NVIDIA_TESLA_A10G", "NVIDIA_L4", "NVIDIA_A100", "NVIDIA_A100_40G", "NVIDIA_A100_80G", "NVIDIA_H100",
    "INTEL_MAX_1550", "INTEL_MAX_1100", "INTEL_GAUDI", "AMD_INSTINCT_MI100", "AMD_INSTINCT_MI210",
    "AMD_INSTINCT_MI250", "AMD_INSTINCT_MI250x", "AMD_INSTINCT_MI300x", "AMD_RADEON_R9_200_HD_7900",
    "AMD_RADEON_HD_7900", "AWS_NEURON_CORE", "GOOGLE_TPU_V2", "GOOGLE_TPU_V3", "GOOGLE_TPU_V4", "GOOGLE_TPU_V5P",
    "GOOGLE_TPU_V5LITEPOD", "GOOGLE_TPU_V6E", "GOOGLE_TPU_V7X", "METAX_C500", "METAX_C550", "MOBILINT_ARIES",
    "MOBILINT_REGULUS", "APPLE_M1", "APPLE_M1_PRO", "APPLE_M1_MAX", "APPLE_M1_ULTRA", "APPLE_M2", "APPLE_M2_PRO",
    "APPLE_M2_MAX", "APPLE_M2_ULTRA", "APPLE_M3", "APPLE_M3_PRO", "APPLE_M3_MAX", "APPLE_SILICON", "NVIDIA_TESLA_A100",
]  # fmt: skip


def test_every_ray_type_has_rays_value():
    from actorlib.util.accelerators import accelerators

    assert {name: getattr(accelerators, name) for name in dir(accelerators) if name.isupper() or name[0].isupper()} == RAY_2_60


def test_the_package_exports_rays_names():
    import actorlib.util.accelerators as package

    assert sorted(package.__all__) == sorted(RAY_2_60_ALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in package.__all__:
            assert getattr(package, name) == RAY_2_60[name if name != "NVIDIA_TESLA_A100" else "NVIDIA_A100"]


def test_imports_ray_users_write():
    from actorlib.util.accelerators import NVIDIA_A100, NVIDIA_TESLA_V100  # noqa: F401

    assert actorlib.util.accelerators.NVIDIA_TESLA_T4 == "T4"  # an attribute after `import actorlib`, as in Ray
    with pytest.warns(DeprecationWarning, match="NVIDIA_TESLA_A100 is deprecated, use NVIDIA_A100"):
        from actorlib.util.accelerators import NVIDIA_TESLA_A100
    assert NVIDIA_TESLA_A100 == NVIDIA_A100 == "A100"
    with pytest.raises(ImportError):
        from actorlib.util.accelerators import tpu  # noqa: F401
    with pytest.raises(AttributeError, match="no TPU utilities"):
        actorlib.util.accelerators.tpu  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'NVIDIA_NOPE'"):
        actorlib.util.accelerators.NVIDIA_NOPE  # noqa: B018


@actorlib.remote(num_cpus=0)
def where() -> str:
    return actorlib.get_runtime_context().get_node_id()


@actorlib.remote(num_cpus=0)
class Accelerated:
    def assigned(self) -> dict:
        return actorlib.get_runtime_context().get_assigned_resources()


def test_accelerator_type_selects_a_node_that_offers_it(fresh_cluster):
    from actorlib.util.accelerators import NVIDIA_A100, NVIDIA_TESLA_V100

    fresh_cluster(num_cpus=2, resources={"accelerator_type:V100": 1})
    node = actorlib.get_runtime_context().get_node_id()
    assert actorlib.get(where.options(accelerator_type=NVIDIA_TESLA_V100).remote(), timeout=60) == node
    actor = Accelerated.options(accelerator_type=NVIDIA_TESLA_V100).remote()
    assert actorlib.get(actor.assigned.remote(), timeout=60).get("accelerator_type:V100") == pytest.approx(0.001)  # Ray's amount
    with pytest.raises(InfeasibleResourcesError, match="accelerator_type:A100"):
        actorlib.get(where.options(accelerator_type=NVIDIA_A100).remote(), timeout=60)
    actorlib.kill(actor)
