"""The world: objects, scene, batched grasp task and its SB3 VecEnv. Imports no learning code.

Importing this package registers the gym ids ``ResDexBase-v0``, ``ResDexHyper-v0`` and ``ResDexVision-v0``
(``gym.make`` also accepts them without the version).
"""

from __future__ import annotations

import os

if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
    os.environ["MUJOCO_GL"] = "egl"  # headless by default; must be set before mujoco is imported

from envs.registration import register_envs  # noqa: E402

register_envs()
