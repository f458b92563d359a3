"""imitation's interactive collector, writing its labelled steps into a ring buffer instead of episode files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from imitation.algorithms.dagger import InteractiveTrajectoryCollector
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from resdex_sb3.dagger.transition_ring_buffer import TransitionRingBuffer


class BufferingTrajectoryCollector(InteractiveTrajectoryCollector):
    """``InteractiveTrajectoryCollector`` (beta mixing of expert and student actions unchanged) whose record of
    every step goes into a :class:`TransitionRingBuffer`.

    The parent keeps a per-env Python trajectory of every step and writes one ``datasets`` file per finished
    episode, which DAgger then reads back every round. Here each step costs one batched array copy: the row
    pairs the observation the step was taken from with the action the expert gave for it.

    :param venv: the env to collect in.
    :param get_robot_acts: the student's (deterministic) actions for a batch of observations.
    :param beta: probability, per env and step, of executing the expert's action instead of the student's.
    :param save_dir: the parent's demonstration folder (kept for its interface; nothing is written there).
    :param rng: draws of the beta mixing.
    :param buffer: where labelled steps go.
    """

    def __init__(
        self,
        venv: VecEnv,
        get_robot_acts: Callable[[np.ndarray], np.ndarray],
        beta: float,
        save_dir: str | Path,
        rng: np.random.Generator,
        buffer: TransitionRingBuffer,
    ) -> None:
        super().__init__(venv=venv, get_robot_acts=get_robot_acts, beta=beta, save_dir=save_dir, rng=rng)
        self.buffer = buffer

    def reset(self) -> np.ndarray:
        obs = self.venv.reset()
        if not isinstance(obs, np.ndarray):
            raise TypeError(f"DAgger needs flat array observations, got {type(obs).__name__}")
        self._last_obs = obs
        self._is_reset = True
        self._last_user_actions = None
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        next_obs, rews, dones, infos = self.venv.step_wait()
        assert self._last_obs is not None and self._last_user_actions is not None
        self.buffer.add(self._last_obs, np.asarray(self._last_user_actions, dtype=np.float32))
        self._last_obs = next_obs
        return next_obs, rews, dones, infos
