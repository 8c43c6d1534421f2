"""Placement groups and GPUs: reserve bundles, run work in them, see which GPU each got.

Runs on its own: it starts a one-node cluster offering 4 CPUs and two
"GPUs" (ids 0 and 1 stand in for real devices; no GPU is touched).
"""

import os

import actorlib
from actorlib.util import get_current_placement_group, placement_group, placement_group_table, remove_placement_group
from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy


@actorlib.remote(num_gpus=1)
class Trainer:
    def devices(self) -> str:
        # Each GPU actor sees only its own device(s), as CUDA libraries expect.
        return os.environ["CUDA_VISIBLE_DEVICES"]


@actorlib.remote(num_cpus=1)
def preprocess(shard: int) -> int:
    return shard * shard


@actorlib.remote(num_cpus=0)
def group_name() -> str | None:
    group = get_current_placement_group()
    return placement_group_table(group)["name"] if group is not None else None


@actorlib.remote(num_cpus=1)
def coordinate(shards: int) -> tuple[list[int], str | None]:
    # These children name no scheduling_strategy. Started with capture_child_tasks, the
    # coordinator keeps them in its own group (any bundle with room). Here that matters:
    # the group holds every CPU of the cluster, so outside it they would wait for ever.
    return actorlib.get([preprocess.remote(i) for i in range(shards)]), actorlib.get(group_name.remote())


def main() -> None:
    actorlib.init(num_cpus=4, num_gpus=2)

    # Two trainer bundles (a CPU and a GPU each) and one for data loading: all or nothing.
    pg = placement_group([{"CPU": 1, "GPU": 1}, {"CPU": 1, "GPU": 1}, {"CPU": 2}], strategy="PACK", name="training")
    actorlib.get(pg.ready())
    print("reserved:", placement_group_table(pg)["bundles"])
    free = actorlib.available_resources()
    print("left for everything else:", {name: free.get(name, 0.0) for name in ("CPU", "GPU")})

    trainers = [
        Trainer.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, index)).remote() for index in (0, 1)
    ]
    devices = actorlib.get([t.devices.remote() for t in trainers])
    assert sorted(devices) == ["0", "1"]
    print("trainer GPUs:", devices)

    loading = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=2)
    print("preprocessed:", actorlib.get([preprocess.options(scheduling_strategy=loading).remote(i) for i in range(6)]))

    captured = PlacementGroupSchedulingStrategy(pg, placement_group_bundle_index=2, placement_group_capture_child_tasks=True)
    squares, group = actorlib.get(coordinate.options(scheduling_strategy=captured).remote(4))
    assert group == "training"
    print(f"the coordinator's children ran in group {group!r}:", squares)

    # A group that cannot be placed whole waits, holding nothing.
    too_big = placement_group([{"GPU": 1}], strategy="STRICT_PACK")
    print("a third GPU bundle is ready:", too_big.wait(timeout_seconds=0.5))
    remove_placement_group(pg)  # the trainers die with it; its resources are free again
    print("after removing the first group, the third bundle is ready:", too_big.wait(timeout_seconds=30))
    remove_placement_group(too_big)
    actorlib.shutdown()
    print("placement groups ok")


if __name__ == "__main__":
    main()
