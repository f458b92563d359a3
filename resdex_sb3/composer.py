"""Residual mixture of experts as env dynamics: ``[k logits, residual]`` (or ``[k logits]``) -> one 24-d hand
action."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from resdex_sb3.policies.geometry_unaware_policy import BASE_OBS_DIM
from resdex_sb3.run_folder import model_and_stats, observation_stats

#: Frozen bases this process has loaded, by (model file, its size and modification time, device). A hyper-policy's
#: training env and its evaluation envs (one per split) share them instead of loading every base once per env.
_FROZEN_BASES: dict[tuple[str, int, int, str], BasePolicy] = {}


class ResidualMoEComposer(VecEnvWrapper):
    """Turn hyper-policy actions ``[k mixing logits, residual]`` into hand actions with frozen base policies.

    Each step: ``w = softmax(logits)``, ``a_i = clip(base_i.mean(normalise_i(obs[:, :base_obs_dim])), -1, 1)``
    and the env gets ``clip(sum_i w_i a_i + residual, -1, 1)`` (ResDex ``Residual.compose_actions``). The
    composition sits *below* the SB3 adapter so that, to PPO, it is part of the env: the hyper-policy is a
    plain actor-critic whose sampled, stored and scored action is the same ``k + 24``-d vector.

    With ``residual=False`` (the paper's "MoE, weights only" ablation, Table 4) the action is the ``k`` logits
    alone and the env gets ``clip(sum_i w_i a_i, -1, 1)``: the hyper-policy can only reweight its bases.

    Stack: ``ResDexVecEnv(Hyper) -> ResidualMoEComposer -> VecMonitor -> VecNormalize``. The composer therefore
    sees raw observations and normalises each base's input with that base's own saved ``VecNormalize``
    statistics, exactly as the base saw them in training. All bases run batched in torch without gradients.

    :param venv: the ResDexHyper VecEnv (raw observations; its first ``base_obs_dim`` dims are the base obs).
    :param base_paths: one entry per base: a ``resdex_sb3.train`` run folder, a model ``.zip``, or a folder
        holding one ``.zip`` (``run_folder.model_and_stats`` says which model and statistics each gives).
    :param device: torch device of the base networks and the composition.
    :param logit_bound: bound of the logit dims of the action space (SB3 needs a finite Box and clips to it).
    :param base_obs_dim: width of the base-observation prefix each base must have been trained on.
    :param residual: whether the action ends in a residual added to the mixture (ResDex) or is the logits only.
    """

    def __init__(
        self,
        venv: VecEnv,
        base_paths: Sequence[str | Path],
        device: th.device | str = "cpu",
        logit_bound: float = 10.0,
        base_obs_dim: int = BASE_OBS_DIM,
        residual: bool = True,
    ) -> None:
        if isinstance(base_paths, (str, Path)):
            raise TypeError(f"base_paths must be a sequence of paths, got the single path {base_paths!r}")
        if not base_paths:
            raise ValueError("ResidualMoEComposer needs at least one base policy")
        if not isinstance(residual, (bool, np.bool_)):
            raise TypeError(f"residual must be true or false, got {residual!r}")
        obs_space, act_space = venv.observation_space, venv.action_space
        if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1 or obs_space.shape[0] < base_obs_dim:
            raise ValueError(f"the wrapped env's observation space {obs_space} has no {base_obs_dim}-d base prefix")
        if not isinstance(act_space, spaces.Box) or len(act_space.shape) != 1:
            raise ValueError(f"the wrapped env needs a 1-D Box action space, got {act_space}")
        self.base_paths: list[Path] = [Path(p) for p in base_paths]
        self.base_obs_dim = int(base_obs_dim)
        self.num_bases = len(self.base_paths)
        self.logit_bound = float(logit_bound)
        self.residual = bool(residual)
        self.device = get_device(device)
        self.model_paths: list[Path] = []
        self.vecnormalize_paths: list[Path | None] = []
        self.bases: list[BasePolicy] = []
        means, stds, clips = [], [], []
        for index, path in enumerate(self.base_paths):
            try:
                model_path, stats_path = model_and_stats(path)
                policy = self._load_policy(model_path, act_space)
                mean, std, clip = observation_stats(stats_path, self.base_obs_dim)
            except (OSError, ValueError) as err:  # name the base: behind a hyper-policy, k of them look alike
                raise type(err)(f"base policy {index} ({path}): {err}") from None
            self.model_paths.append(model_path)
            self.vecnormalize_paths.append(stats_path)
            self.bases.append(policy)
            means.append(mean)
            stds.append(std)
            clips.append(clip)
        # (k, 1, D) statistics kept in float64 so the normalisation matches VecNormalize's numpy arithmetic.
        self._obs_mean = th.as_tensor(np.stack(means)[:, None], dtype=th.float64, device=self.device)
        self._obs_std = th.as_tensor(np.stack(stds)[:, None], dtype=th.float64, device=self.device)
        self._obs_clip = th.as_tensor(np.array(clips)[:, None, None], dtype=th.float64, device=self.device)
        self._env_low = th.as_tensor(act_space.low, dtype=th.float32, device=self.device)
        self._env_high = th.as_tensor(act_space.high, dtype=th.float32, device=self.device)
        # the residual dims keep the hand's bounds; weights only, the action is the logits alone
        residual_low, residual_high = (act_space.low, act_space.high) if self.residual else ([], [])
        residual_dim = len(residual_low)
        low = np.concatenate([np.full(self.num_bases, -self.logit_bound), residual_low]).astype(np.float32)
        high = np.concatenate([np.full(self.num_bases, self.logit_bound), residual_high]).astype(np.float32)
        self._hyper_low = th.as_tensor(low, device=self.device)
        self._hyper_high = th.as_tensor(high, device=self.device)
        super().__init__(venv, action_space=spaces.Box(low, high, (self.num_bases + residual_dim,), np.float32))
        self._last_obs: np.ndarray | None = None
        #: softmax mixing weights of the last step, ``(N, k)``; None before the first step.
        self.last_weights: np.ndarray | None = None
        #: residual of the last step (after clipping to its bounds), ``(N, 24)`` (``(N, 0)`` with ``residual=False``);
        #: None before the first step.
        self.last_residual: np.ndarray | None = None

    # ------------------------------------------------------------------ VecEnv API
    def reset(self) -> VecEnvObs:
        obs = self.venv.reset()
        self._last_obs = np.asarray(obs)
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        if self._last_obs is None:
            raise RuntimeError("ResidualMoEComposer.step_async() before reset(): no observation for the bases")
        composed, weights, residual = self._compose(self._last_obs, actions)
        self.last_weights = weights.cpu().numpy()
        self.last_residual = residual.cpu().numpy()
        self.venv.step_async(composed.cpu().numpy())

    def step_wait(self) -> VecEnvStepReturn:
        obs, rewards, dones, infos = self.venv.step_wait()
        # After an auto-reset ``obs`` already is the new episode's first observation (the terminal one is in
        # the infos), which is exactly what the bases must act on at the next step.
        self._last_obs = np.asarray(obs)
        return obs, rewards, dones, infos

    # ------------------------------------------------------------------ composition
    def compose(self, obs: np.ndarray | th.Tensor, hyper_actions: np.ndarray | th.Tensor) -> np.ndarray:
        """The hand action ``(N, 24)`` that ``hyper_actions`` ``(N, k + 24)``, or ``(N, k)`` with ``residual=False``,
        give on *raw* observations ``obs``.

        Used as the DAgger expert: ``obs`` must be the unnormalised env observation (the hyper-policy itself is
        queried on its own normalised copy). Hyper actions are first clipped to this wrapper's action space, as
        SB3 does before stepping, so ``compose`` agrees with what a step would send.
        """
        composed, _, _ = self._compose(obs, hyper_actions)
        return composed.cpu().numpy()

    @th.no_grad()
    def base_actions(self, obs: np.ndarray | th.Tensor) -> th.Tensor:
        """Deterministic actions of every base on raw observations, clipped to the env bounds: ``(N, k, 24)``."""
        raw = th.as_tensor(obs, device=self.device)
        if raw.ndim != 2 or raw.shape[1] < self.base_obs_dim:
            raise ValueError(f"observations must be (N, >= {self.base_obs_dim}), got {tuple(raw.shape)}")
        prefix = raw[:, : self.base_obs_dim].to(th.float64)
        normalised = ((prefix - self._obs_mean) / self._obs_std).clamp(-self._obs_clip, self._obs_clip).float()
        actions = th.stack(
            [base.get_distribution(normalised[i]).mode() for i, base in enumerate(self.bases)], dim=1
        )  # fmt: skip
        return actions.clamp(self._env_low, self._env_high)

    @th.no_grad()
    def _compose(self, obs: np.ndarray | th.Tensor, hyper_actions: np.ndarray | th.Tensor) -> tuple[th.Tensor, ...]:
        """Composed action, mixing weights and residual, as tensors on ``self.device``."""
        hyper = th.as_tensor(hyper_actions, dtype=th.float32, device=self.device)
        if hyper.ndim != 2 or hyper.shape[1] != self._hyper_low.shape[0]:
            layout = f"{self.num_bases} logits" + (" + residual" if self.residual else ", no residual")
            width = self._hyper_low.shape[0]
            raise ValueError(f"hyper actions must be (N, {width}) ({layout}), got {tuple(hyper.shape)}")
        if hyper.shape[0] != len(obs):
            raise ValueError(f"{hyper.shape[0]} hyper actions for {len(obs)} observations")
        hyper = hyper.clamp(self._hyper_low, self._hyper_high)
        weights = th.softmax(hyper[:, : self.num_bases], dim=-1)
        residual = hyper[:, self.num_bases :]  # (N, 0) with residual=False
        mixed = (weights.unsqueeze(-1) * self.base_actions(obs)).sum(dim=1)
        if self.residual:
            mixed = mixed + residual
        return mixed.clamp(self._env_low, self._env_high), weights, residual

    # ------------------------------------------------------------------ loading
    def _load_policy(self, model_path: Path, env_action_space: spaces.Box) -> BasePolicy:
        """Load one base as a frozen, eval-mode policy, checking it fits the base observation and the hand."""
        file = model_path.stat()
        key = (str(model_path.resolve()), file.st_size, file.st_mtime_ns, str(self.device))
        policy = _FROZEN_BASES.get(key)
        if policy is None:
            try:
                policy = PPO.load(model_path, device=self.device).policy
            except Exception as err:  # SB3 reports a truncated zip as a bare AssertionError naming no file
                raise ValueError(f"cannot load the model {model_path} ({type(err).__name__}: {err}); it is "
                                 "truncated or not an SB3 model: restore the file or retrain the base") from None
        obs_space, act_space = policy.observation_space, policy.action_space
        if not isinstance(obs_space, spaces.Box) or obs_space.shape != (self.base_obs_dim,):
            raise ValueError(
                f"base policy {model_path} was trained on observations of shape {obs_space.shape}, but bases "
                f"act on the {self.base_obs_dim}-d base observation (train it on ResDexBase)"
            )
        if not isinstance(act_space, spaces.Box) or act_space.shape != env_action_space.shape:
            raise ValueError(
                f"base policy {model_path} outputs actions of shape {act_space.shape}, but the env takes "
                f"{env_action_space.shape}"
            )
        policy.set_training_mode(False)
        policy.requires_grad_(False)
        _FROZEN_BASES[key] = policy
        return policy
