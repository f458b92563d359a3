"""Cost of the ``ResDexVision`` point-cloud observation, as a ratio to the plain env step, measured in one run.

Three VecEnvs over the same objects, envs, seeds, thread count and random actions: ``ResDexHyper`` (the plain
sim step, observation included), ``ResDexVision`` with ``cloud_mode=gt_pose`` and with ``cloud_mode=camera``.
Rounds are interleaved (plain, gt_pose, camera, plain, ...) and each keeps its best round, so machine noise hits
all three alike. Each full step includes physics, observation, reward, infos and auto-resets.

Last lines: ``ratio: gt_pose/plain X`` and ``ratio: camera/plain Y`` (per env step, largest size).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import envs  # noqa: F401
from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects

MODES = ("plain", "gt_pose", "camera")


def _make(mode: str, n: int, threads: int):
    if mode == "plain":
        return make_vec_env("ResDexHyper", n, primitive_objects(), seed=0, num_threads=threads)
    return make_vec_env("ResDexVision", n, primitive_objects(), seed=0, num_threads=threads, cloud_mode=mode)


def _seconds_per_step(env, actions: np.ndarray) -> float:
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return (time.perf_counter() - start) / len(actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one small size, short rounds (well under 2 minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="env counts (default 64 256; quick: 64)")
    parser.add_argument("--num-threads", type=int, default=1, help="physics / ray-casting threads")
    args = parser.parse_args()
    sizes = args.sizes or ([64] if args.quick else [64, 256])
    steps, rounds = (15, 3) if args.quick else (50, 5)
    print(f"threads={args.num_threads} steps/round={steps} rounds={rounds} (best round kept), primitive objects")
    ratios: dict[str, float] = {}
    for n in sizes:
        envs_ = {m: _make(m, n, args.num_threads) for m in MODES}
        rng = np.random.default_rng(1)
        actions = rng.uniform(-1, 1, size=(steps, n, 24)).astype(np.float32)
        best = dict.fromkeys(MODES, np.inf)
        for env in envs_.values():
            env.reset()
            _seconds_per_step(env, actions[:3])  # warm-up: first contacts, caches
        for _ in range(rounds):
            for m, env in envs_.items():
                best[m] = min(best[m], _seconds_per_step(env, actions))
        observe = dict.fromkeys(MODES, np.inf)
        for _ in range(5):  # the observation alone, at the state the rounds left; best of 5 like the steps
            for m, env in envs_.items():
                start = time.perf_counter()
                env.task._observe()
                observe[m] = min(observe[m], time.perf_counter() - start)
        visible = envs_["camera"].task.visible_points
        print(f"N={n:4d}  per step: " + "   ".join(f"{m} {1e3 * best[m]:7.2f} ms" for m in MODES)
              + "   observation alone: " + "   ".join(f"{m} {1e3 * observe[m]:6.2f} ms" for m in MODES)
              + f"   camera valid returns/env: median {int(np.median(visible))} "
              f"(min {int(visible.min())})")  # fmt: skip
        ratios = {m: best[m] / best["plain"] for m in MODES[1:]}
        for env in envs_.values():
            env.close()
    for m, r in ratios.items():
        print(f"ratio: {m}/plain {r:.2f}")


if __name__ == "__main__":
    main()
