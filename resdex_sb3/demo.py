"""``python -m resdex_sb3.demo``: what runs on a fresh machine today.

Until training lands (issue 6) the demo runs the scripted grasp on the embedded primitives, prints what it
measured (lift, hand-object penetration, any-time and held-at-end success) and saves a frame of the cube lift.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import envs  # noqa: F401  (headless GL default, gym ids)
from envs.objects.primitives import primitive_objects
from envs.render import FrameRenderer, RenderUnavailableError
from envs.scripted import hand_object_penetration, run_scripted_grasp
from envs.task import GraspTask

FRAME_STEP = 160


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="folder for the saved frame")
    args = parser.parse_args(argv)
    objects = primitive_objects()
    task = GraspTask(objects, autoreset=False)
    deepest = np.zeros(len(objects))
    frames: list[np.ndarray] = []
    renderer = FrameRenderer()

    def probe(t: GraspTask, step: int) -> None:
        for i in range(t.num_envs):
            deepest[i] = max(deepest[i], hand_object_penetration(t, i))
        if step == FRAME_STEP:
            try:
                frames.append(renderer.render(t.sim.model_of(0), t.sim.data_of(0)))
            except RenderUnavailableError as err:
                print(f"(no frame: {err})")

    result = run_scripted_grasp(task, on_step=probe)
    renderer.close()
    print("Scripted grasp (cube-tuned script, 200 steps at 60 Hz):")
    print(f"{'object':<12} {'lift [m]':>9} {'max penetration [mm]':>21} {'success':>8} {'held':>5}")
    for i, obj in enumerate(objects):
        print(f"{obj.name:<12} {result['lift'][i]:9.3f} {1000 * deepest[i]:21.1f} "
              f"{bool(result['is_success'][i])!s:>8} {bool(result['is_held'][i])!s:>5}")  # fmt: skip
    if frames:
        from PIL import Image

        args.out.mkdir(parents=True, exist_ok=True)
        path = args.out / "scripted_grasp.png"
        Image.fromarray(frames[0]).save(path)
        print(f"frame at step {FRAME_STEP}: {path}")


if __name__ == "__main__":
    main()
