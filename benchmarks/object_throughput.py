"""Object data throughput, measured side by side in one run.

1. build: embedded objects generated + 4,096 surface points each (objects/s), and grasp-proposal sampling
   (objects/s, candidates included);
2. import: a folder of generated meshes (boxes, cylinders, and non-convex tori that go through CoACD), first
   without and then with the CoACD cache (objects/s);
3. simulation: env-steps/s of one batch of mixed embedded objects versus one batch of cubes, same env count,
   same random actions; the last line is their ratio.

    python benchmarks/object_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from envs.config import SceneConfig
from envs.objects.embedded import embedded_objects
from envs.objects.grasp_sampler import SamplerConfig, sample_proposals
from envs.objects.primitives import cube
from envs.objects.surface import sample_surface
from envs.task import ACTION_DIM, GraspTask


def bench_build(n: int) -> tuple[float, float]:
    objects = embedded_objects("large")[:n]
    began = time.perf_counter()
    for i, obj in enumerate(embedded_objects("large")[:n]):
        sample_surface(obj, seed=i)
    build_rate = n / (time.perf_counter() - began)
    train = [o for o in objects if o.split == "train"][: max(4, n // 4)]
    began = time.perf_counter()
    sample_proposals(train, SamplerConfig())
    return build_rate, len(train) / (time.perf_counter() - began)


def bench_import(n: int) -> tuple[float, float]:
    import trimesh

    from envs.objects.importers.mesh_folder import import_mesh_folder

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / "meshes", Path(tmp) / "cache"
        folder.mkdir()
        for i in range(n):
            kind = i % 3
            if kind == 0:
                mesh = trimesh.creation.box(rng.uniform(0.04, 0.12, 3))
            elif kind == 1:
                mesh = trimesh.creation.cylinder(rng.uniform(0.02, 0.04), rng.uniform(0.06, 0.15))
            else:
                mesh = trimesh.creation.torus(rng.uniform(0.03, 0.05), rng.uniform(0.01, 0.015), 24, 12)
            mesh.export(folder / f"mesh{i:03d}.obj")
        rates = []
        for _ in range(2):  # cold (CoACD runs), then warm (cached decompositions)
            began = time.perf_counter()
            result = import_mesh_folder(folder, "bench", cache_dir=cache)
            rates.append(len(result.objects) / (time.perf_counter() - began))
    return rates[0], rates[1]


def steps_per_second(objects: list, num_envs: int, steps: int, scene_config: SceneConfig) -> float:
    envs = [objects[i * len(objects) // num_envs] for i in range(num_envs)]
    task = GraspTask(envs, scene_config=scene_config, autoreset=True)
    task.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, num_envs, ACTION_DIM))
    task.step(actions[0])  # warm-up
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        for a in actions:
            task.step(a)
        best = max(best, steps * num_envs / (time.perf_counter() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (under 2 minutes)")
    args = parser.parse_args()
    n_build, n_import, n_envs, steps = (40, 6, 256, 30) if args.quick else (400, 30, 1024, 100)
    build_rate, proposal_rate = bench_build(n_build)
    print(f"build: {build_rate:8.1f} objects/s (parts + 4096 surface points), {n_build} objects")
    print(f"proposals: {proposal_rate:8.2f} objects/s ({SamplerConfig().candidates_per_object} simulated candidates each)")
    cold, warm = bench_import(n_import)
    print(f"import: {cold:8.1f} objects/s with CoACD, {warm:8.1f} objects/s cached, {n_import} meshes")
    mixed = embedded_objects("default")
    config = SceneConfig()
    rate_mixed = steps_per_second(mixed, n_envs, steps, config)
    rate_cube = steps_per_second([cube()], n_envs, steps, config)
    print(f"sim, {n_envs} envs: mixed {len(mixed)} objects {rate_mixed:,.0f} env-steps/s, one cube {rate_cube:,.0f}")
    print(f"ratio: {rate_mixed / rate_cube:.3f}")


if __name__ == "__main__":
    main()
