"""One grasp env as a gymnasium.Env, for debugging, ``check_env`` and ``gym.make``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from envs.config import DEFAULT_BACKEND, SceneConfig, TaskConfig
from envs.objects.primitives import cube
from envs.objects.spec import ObjectSpec
from envs.render import FrameRenderer
from envs.task import ACTION_DIM, GraspTask
from envs.variants import VARIANTS, VISION_VARIANTS
from envs.vision import VisionConfig, split_vision_options
from envs.vision_task import VisionGraspTask


class ResDexGraspEnv(gym.Env):
    """A single grasp-and-lift env (the batched task with one env).

    :param obj: the object to grasp (a 6 cm cube by default).
    :param task_config: observation / reward / episode settings.
    :param scene_config: scene settings.
    :param render_mode: ``rgb_array`` or None.
    :param variant: a registered variant whose settings the task options extend (``ResDexVision`` needs it:
        its task is a ``VisionGraspTask`` and its options may also be ``VisionConfig`` fields).
    :param backend: physics engine, ``mujoco`` or ``warp``.
    :param device: warp device for the ``warp`` backend (None: CUDA when present, else the CPU).
    :param task_kwargs: task options (``TaskConfig`` fields) when ``task_config`` is omitted.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 60}

    def __init__(
        self,
        obj: ObjectSpec | None = None,
        task_config: TaskConfig | None = None,
        scene_config: SceneConfig | None = None,
        render_mode: str | None = None,
        variant: str | None = None,
        backend: str = DEFAULT_BACKEND,
        device: str | None = None,
        **task_kwargs: Any,
    ) -> None:
        if task_config is not None and task_kwargs:
            raise ValueError(f"pass task options either in task_config or as keywords, not both: {sorted(task_kwargs)}")
        vision = None
        if variant is not None:
            name = variant.removesuffix("-v0")
            task_kwargs = {**VARIANTS[name], **task_kwargs}
            if name in VISION_VARIANTS:
                vision_kwargs, task_kwargs = split_vision_options(task_kwargs)
                vision = VisionConfig.from_kwargs(**vision_kwargs)
        config = task_config or TaskConfig.from_kwargs(**task_kwargs)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode {render_mode!r} is not supported; use 'rgb_array' or None")
        objects = [obj or cube()]
        if vision is None:
            self.task = GraspTask(objects, config, scene_config=scene_config, num_threads=1, autoreset=False,
                                  backend=backend, device=device)  # fmt: skip
        else:
            self.task = VisionGraspTask(objects, config, vision, scene_config=scene_config, num_threads=1,
                                        autoreset=False, backend=backend, device=device)  # fmt: skip
        clip = config.obs_clip
        self.observation_space = gym.spaces.Box(-clip, clip, (self.task.obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.render_mode = render_mode
        self._renderer: FrameRenderer | None = None
        self._needs_reset = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"unknown reset option(s) {sorted(options)}; this env accepts none")
        if seed is not None:
            self.task.seed([seed])
        self._needs_reset = False
        return self.task.reset()[0], {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise RuntimeError("call reset() before step(), and again after an episode ends")
        result = self.task.step(np.asarray(action)[None])
        info: dict[str, Any] = {
            "is_success": bool(result.is_success[0]),
            "is_held": bool(result.is_held[0]),
            "physics_reset": bool(result.physics_reset[0]),
            "reward_terms": {t: float(v[0]) for t, v in result.episode_terms.items()},
        }
        terminated, truncated = bool(result.terminated[0]), bool(result.truncated[0])
        self._needs_reset = terminated or truncated
        return result.obs[0], float(result.reward[0]), terminated, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode != "rgb_array":
            return None
        if self._renderer is None:
            self._renderer = FrameRenderer()
        return self._renderer.render(self.task.sim.model_of(0), self.task.sim.data_of(0))

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
