"""The DAgger expert: the trained hyper-policy with its frozen base policies, reading only the privileged slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

from envs.vision import PRIVILEGED
from resdex_sb3.composer import ResidualMoEComposer
from resdex_sb3.run_folder import load_algorithm, load_run, observation_stats, resolve_run_path


class PrivilegedExpertPolicy(BasePolicy):
    """A ``BasePolicy`` over the ``ResDexVision`` observation that acts like the hyper-policy run it was built from.

    For observations ``obs``: ``h = obs[:, PRIVILEGED]`` (the raw hyper observation), the hyper-policy's mean
    action on ``h`` normalised with *its* saved ``VecNormalize`` statistics, then the residual-MoE composition
    on raw ``h`` (each base normalising its own prefix with its own statistics). That is exactly the hand action
    the hyper run would send from the same state; the student part of ``obs`` is never read. imitation's DAgger
    then sees an ordinary SB3 policy on the env's own observation space.

    :param observation_space: the ``ResDexVision`` observation space.
    :param action_space: the 24-d hand action space.
    :param hyper_policy: the hyper-policy (its action is ``[k logits, 24-d residual]``, or ``[k logits]`` for a
        weights-only run: env option ``residual: false``).
    :param composer: the composer holding the frozen bases (only its ``compose`` is used).
    :param obs_mean: mean of the hyper-policy's observation normalisation.
    :param obs_std: ``sqrt(var + eps)`` of that normalisation.
    :param obs_clip: clip of the normalised observation.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        hyper_policy: BasePolicy,
        composer: ResidualMoEComposer,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
        obs_clip: float,
    ) -> None:
        super().__init__(observation_space, action_space)
        self.hyper_policy = hyper_policy.requires_grad_(False)
        self.hyper_policy.set_training_mode(False)
        self.composer = composer
        # float64 so the normalisation matches VecNormalize's numpy arithmetic
        self.register_buffer("obs_mean", th.as_tensor(obs_mean, dtype=th.float64))
        self.register_buffer("obs_std", th.as_tensor(obs_std, dtype=th.float64))
        self.obs_clip = float(obs_clip)

    @classmethod
    def from_run(cls, run_path: str | Path, venv: VecEnv, device: th.device | str = "cpu") -> PrivilegedExpertPolicy:
        """The expert of a finished ``ResDexHyper`` run folder (trained by PPO or TRPO, with or without a residual),
        for the ``ResDexVision`` env ``venv``."""
        run = load_run(run_path)
        if run.env_id != "ResDexHyper-v0":
            raise ValueError(f"the expert must be a ResDexHyper run, {run.root} is a {run.env_id} run")
        bases = run.env_kwargs.get("base_models")
        if not bases:
            raise ValueError(f"hyper run {run.root} names no base_models in its config")
        hyper = load_algorithm(run.model_path, run.algo, device=device).policy
        width = venv.observation_space.shape[0] - PRIVILEGED.start
        mean, std, clip = observation_stats(run.stats_path, width)
        if hyper.observation_space.shape != (width,):
            raise ValueError(f"hyper-policy {run.model_path} reads {hyper.observation_space.shape} observations; "
                             f"the env's privileged part is ({width},)")  # fmt: skip
        composer = ResidualMoEComposer(venv, [resolve_run_path(b, run.root) for b in bases], device=device,
                                       residual=run.env_kwargs.get("residual", True))  # fmt: skip
        if hyper.action_space.shape != composer.action_space.shape:
            raise ValueError(f"hyper-policy {run.model_path} outputs actions of shape {hyper.action_space.shape}, but "
                             f"its run's composer ({composer.num_bases} bases, residual {composer.residual}) takes "
                             f"{composer.action_space.shape}")  # fmt: skip
        return cls(venv.observation_space, venv.action_space, hyper, composer, mean, std, clip).to(device)

    def forward(self, obs: th.Tensor, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic)

    def _predict(self, observation: th.Tensor, deterministic: bool = True) -> th.Tensor:
        """The composed hand action; always the mean (the expert is deterministic whatever is asked)."""
        raw = observation[:, PRIVILEGED]
        normalised = ((raw.double() - self.obs_mean) / self.obs_std).clamp(-self.obs_clip, self.obs_clip).float()
        hyper_actions = self.hyper_policy.get_distribution(normalised).mode()
        return th.as_tensor(self.composer.compose(raw, hyper_actions), device=observation.device)
