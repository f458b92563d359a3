"""SB3 VecEnv adapter over the whole batched task: the one place arrays become SB3's per-env infos."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from envs.render import FrameRenderer
from envs.task import ACTION_DIM, GraspTask

RESET_OPTIONS: frozenset[str] = frozenset()


class ResDexVecEnv(VecEnv):
    """N grasp envs stepped as one batch, auto-resetting finished envs in one batched call.

    Infos carry ``terminal_observation``, ``TimeLimit.truncated``, ``is_success``, ``is_held``, ``episode``,
    ``reward_terms`` (episode sums), ``grasp_distance`` (the episode's grasp-pose quality D, the paper's
    ``-sum_t r_proposal``, in every reward mode; None when the env's object has no grasp proposal) and
    ``physics_resets`` for finished envs only; other envs get ``{}``.

    :param task: the batched task (created with ``autoreset=True``).
    :param render_mode: ``rgb_array`` to allow ``render()``, else None.
    """

    render_mode: str | None = None
    #: (height, width) of rendered frames, pixels; software rendering costs in proportion to the pixels, so a
    #: caller that only wants small frames (GIFs) sets this before the first ``render``
    render_size: tuple[int, int] = (480, 640)

    def __init__(self, task: GraspTask, render_mode: str | None = None) -> None:
        if not task.autoreset:
            raise ValueError("ResDexVecEnv needs a GraspTask built with autoreset=True")
        self.task = task
        self.render_mode = render_mode
        clip = task.config.obs_clip
        observation_space = gym.spaces.Box(-clip, clip, (task.obs_dim,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        super().__init__(task.num_envs, observation_space, action_space)
        self._actions: np.ndarray | None = None
        self._episode_start = np.full(task.num_envs, time.time())
        self._renderer: FrameRenderer | None = None

    # ------------------------------------------------------------------ core API
    def reset(self) -> VecEnvObs:
        if any(s is not None for s in self._seeds):
            self.task.seed(self._seeds)
        unknown = {k for opts in self._options for k in opts} - RESET_OPTIONS
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; this env accepts none")
        self._reset_seeds()
        self._reset_options()
        self._episode_start[:] = time.time()
        return self.task.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = self.task.validate_actions(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        result = self.task.step(self._actions)
        self._actions = None
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_ids = np.flatnonzero(result.done)
        if len(done_ids):
            now = time.time()
            for k, i in enumerate(done_ids):
                infos[i] = {
                    "terminal_observation": result.terminal_obs[k],
                    "TimeLimit.truncated": bool(result.truncated[i] and not result.terminated[i]),
                    "is_success": bool(result.is_success[i]),
                    "is_sustained": bool(result.is_sustained[i]),
                    "is_held": bool(result.is_held[i]),
                    "physics_reset": bool(result.physics_reset[i]),
                    "physics_resets": int(self.task.physics_resets[i]),
                    "episode": {"r": float(result.episode_return[i]), "l": int(result.episode_length[i]),
                                "t": round(now - self._episode_start[i], 6)},
                    "reward_terms": {t: float(v[i]) for t, v in result.episode_terms.items()},
                    "grasp_distance": None if np.isnan(result.grasp_distance[i]) else float(result.grasp_distance[i]),
                }  # fmt: skip
            self._episode_start[done_ids] = now
        return result.obs, result.reward, result.done, infos

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ attribute access SB3 needs
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name == "render_mode":
            return [self.render_mode for _ in self._get_indices(indices)]
        if attr_name == "objects":
            return [self.task.objects[i] for i in self._get_indices(indices)]
        value = getattr(self.task, attr_name)
        if isinstance(value, np.ndarray) and value.shape[:1] == (self.num_envs,):
            return [value[i] for i in self._get_indices(indices)]
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        current = getattr(self.task, attr_name)
        if isinstance(current, np.ndarray) and current.shape[:1] == (self.num_envs,):
            current[list(self._get_indices(indices))] = value
        else:
            setattr(self.task, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list[Any]:
        method = getattr(self.task, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # ------------------------------------------------------------------ rendering
    def get_images(self) -> Sequence[np.ndarray | None]:
        return [self.render_env(i) for i in range(self.num_envs)]

    def render(self, mode: str | None = None) -> np.ndarray | None:
        """Frame of env 0 (RGB array)."""
        return self.render_env(0)

    def render_env(self, env: int, camera: str = "front") -> np.ndarray:
        model = self.task.sim.model_of(env)
        if self._renderer is None:
            self._renderer = FrameRenderer(*self.render_size)
        return self._renderer.render(model, self.task.sim.data_of(env), camera)
