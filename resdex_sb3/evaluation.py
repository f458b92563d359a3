"""The one evaluation protocol, shared by ``resdex_sb3.evaluate`` and the periodic evaluation callback.

Protocol: every object of the split gets ``trials`` envs (seeded ``seed + env index``, so the start poses are
fixed); all envs run one full episode with the policy's deterministic action; an object's success is the share
of its trials that reached the goal at any time (the paper's metric) and its held share is the share still at
the goal on the last step. The split's number is the mean over objects, with a 95 % t-interval over objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from stable_baselines3.common.vec_env import VecEnv

Act = Callable[[np.ndarray], np.ndarray]  # batch of observations -> batch of actions


@dataclass
class SplitResult:
    """Per-object means and their summary.

    :param objects: object names.
    :param success: (objects,) share of trials that succeeded at any time.
    :param held: (objects,) share of trials holding the object at the goal at the end.
    :param trials: trials per object.
    """

    objects: list[str]
    success: np.ndarray
    held: np.ndarray
    trials: int

    @property
    def mean_success(self) -> float:
        return float(self.success.mean()) if len(self.success) else float("nan")

    @property
    def mean_held(self) -> float:
        return float(self.held.mean()) if len(self.held) else float("nan")

    @property
    def ci95(self) -> tuple[float, float]:
        return confidence_interval(self.success)

    @property
    def held_ci95(self) -> tuple[float, float]:
        return confidence_interval(self.held)


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """t-interval of the mean over objects, clipped to [0, 1] (degenerate for fewer than 2 objects)."""
    n = len(values)
    mean = float(np.mean(values)) if n else float("nan")
    if n < 2:
        return mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n))
    return max(0.0, mean - half), min(1.0, mean + half)


def run_episodes(env: VecEnv, act: Act, episode_length: int, on_step: Callable[[VecEnv, int], None] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One synchronised episode in every env; returns per-env (success, held)."""
    obs = env.reset()
    success = np.zeros(env.num_envs, dtype=bool)
    held = np.zeros(env.num_envs, dtype=bool)
    finished = np.zeros(env.num_envs, dtype=bool)
    for step in range(episode_length):
        obs, _, dones, infos = env.step(act(obs))
        if on_step is not None:
            on_step(env, step)
        for i in np.flatnonzero(dones & ~finished):
            success[i] = infos[i].get("is_success", False)
            held[i] = infos[i].get("is_held", False)
        finished |= dones
        if finished.all():
            break
    return success, held


def per_object(names: Sequence[str], success: np.ndarray, held: np.ndarray, trials: int) -> SplitResult:
    """Average env outcomes per object (envs were assigned to objects in contiguous blocks of ``trials``)."""
    order: list[str] = list(dict.fromkeys(names))
    index = {n: i for i, n in enumerate(order)}
    ids = np.array([index[n] for n in names])
    counts = np.bincount(ids, minlength=len(order))
    s = np.bincount(ids, weights=success.astype(float), minlength=len(order)) / counts
    h = np.bincount(ids, weights=held.astype(float), minlength=len(order)) / counts
    return SplitResult(order, s, h, trials)
