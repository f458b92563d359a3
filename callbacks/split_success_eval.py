"""Periodic success evaluation on every split, with the evaluation protocol of ``resdex_sb3.evaluate``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize


class SplitSuccessEval(BaseCallback):
    """Every ``eval_freq`` env steps, run ``trials`` deterministic episodes per object of each split.

    Logs ``eval/success_<split>`` and ``eval/held_<split>``. The experiment manager supplies ``make_env``
    (split -> un-normalised VecEnv with one block of ``trials`` envs per object); the training env's
    normalisation statistics are copied in before each evaluation.

    :param eval_freq: env steps (summed over envs) between evaluations.
    :param splits: splits to evaluate.
    :param trials: episodes per object.
    :param max_objects: evaluate at most this many objects per split (the first ones), to bound the cost.
    :param verbose: SB3 verbosity.
    """

    def __init__(self, eval_freq: int, splits: Sequence[str] = ("train", "unseen_obj", "unseen_cat"),
                 trials: int = 4, max_objects: int = 64, verbose: int = 0) -> None:  # fmt: skip
        super().__init__(verbose)
        self.eval_freq, self.splits, self.trials, self.max_objects = eval_freq, tuple(splits), trials, max_objects
        self.make_env: Callable[[str, int, int], VecEnv] | None = None
        self._envs: dict[str, VecEnv] = {}
        self._last = 0
        self.last_results: dict[str, Any] = {}

    def _on_step(self) -> bool:
        if self.make_env is not None and self.num_timesteps - self._last >= self.eval_freq:
            self._last = self.num_timesteps
            self.evaluate()
        return True

    def evaluate(self) -> dict[str, Any]:
        from resdex_sb3.evaluation import per_object, run_episodes

        assert self.make_env is not None, "the experiment manager sets make_env"
        train_norm = self.model.get_vec_normalize_env()
        for split in self.splits:
            env = self._env(split)
            if isinstance(env, VecNormalize) and train_norm is not None:
                env.obs_rms, env.clip_obs = train_norm.obs_rms.copy(), train_norm.clip_obs
            length = env.get_attr("config")[0].episode_length

            def act(obs: np.ndarray) -> np.ndarray:
                return self.model.predict(obs, deterministic=True)[0]

            success, held = run_episodes(env, act, length)
            names = [o.name for o in env.get_attr("objects")]
            result = per_object(names, success, held, self.trials)
            self.logger.record(f"eval/success_{split}", result.mean_success)
            self.logger.record(f"eval/held_{split}", result.mean_held)
            self.last_results[split] = result
        return self.last_results

    def _env(self, split: str) -> VecEnv:
        if split not in self._envs:
            assert self.make_env is not None
            env = self.make_env(split, self.trials, self.max_objects)
            if self.model.get_vec_normalize_env() is not None:
                env = VecNormalize(env, training=False, norm_reward=False)
            self._envs[split] = env
        return self._envs[split]

    def _on_training_end(self) -> None:
        for env in self._envs.values():
            env.close()
        self._envs.clear()
