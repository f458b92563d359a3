"""Cost of one GIF frame with the frame renderer's settings against MuJoCo's own, as a ratio, measured in one run.

One simulation of the cube, stepped with random actions; two ``FrameRenderer`` s draw the same states at the
GIF's size (``run_evaluation.GIF_MAX_WIDTH``): one with ``envs.render``'s shadow map size and multisamples, one
with MuJoCo's own (the model's ``vis.quality``: 4096 and 4). Rounds alternate between the two and each keeps its
best round, so machine noise hits both alike. Needs offscreen OpenGL (``MUJOCO_GL=egl`` or ``osmesa``).

Last line: ``ratio: mujoco/ours X`` (seconds per frame).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

import envs  # noqa: F401  (sets MUJOCO_GL before mujoco loads)
from envs.factory import make_vec_env
from envs.render import MULTISAMPLES, SHADOW_MAP_SIZE, FrameRenderer
from resdex_sb3.run_evaluation import GIF_MAX_WIDTH


def _seconds_per_frame(renderer: FrameRenderer, env: Any, frames: int) -> float:
    model, data = env.task.sim.model_of(0), env.task.sim.data_of(0)
    renderer.render(model, data)  # the context is made on the first frame: not timed
    start = time.perf_counter()
    for _ in range(frames):
        renderer.render(model, data)
    return (time.perf_counter() - start) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=20, help="frames per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per setting (best kept)")
    args = parser.parse_args()
    height, width = GIF_MAX_WIDTH * 3 // 4, GIF_MAX_WIDTH
    env = make_vec_env("ResDexBase", num_envs=1, seed=0, num_threads=1)
    env.reset()
    for action in np.random.default_rng(0).uniform(-1, 1, size=(20, 1, 24)).astype(np.float32):
        env.step(action)  # a hand over the cube, not the first frame
    quality = env.task.sim.model_of(0).vis.quality
    settings = {"ours": {"shadow_map_size": SHADOW_MAP_SIZE, "multisamples": MULTISAMPLES},
                "mujoco": {"shadow_map_size": quality.shadowsize, "multisamples": quality.offsamples}}  # fmt: skip
    renderers = {name: FrameRenderer(height, width, **kwargs) for name, kwargs in settings.items()}
    best = dict.fromkeys(settings, np.inf)
    for _ in range(args.rounds):
        for name, renderer in renderers.items():
            best[name] = min(best[name], _seconds_per_frame(renderer, env, args.frames))
    for name, kwargs in settings.items():
        print(f"{name:6s} {width} x {height}, shadow map {kwargs['shadow_map_size']}, "
              f"multisamples {kwargs['multisamples']}: {1e3 * best[name]:6.2f} ms/frame")  # fmt: skip
    for renderer in renderers.values():
        renderer.close()
    env.close()
    print(f"ratio: mujoco/ours {best['mujoco'] / best['ours']:.2f}")


if __name__ == "__main__":
    main()
