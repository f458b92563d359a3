"""Tensorboard scalars from the batched env: sustained, success, held, every reward term, mixing entropy, residual
norm."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper


def find_wrapper_with(env: VecEnv, attribute: str) -> VecEnv | None:
    """The first VecEnv in the wrapper chain that has ``attribute``."""
    while env is not None:
        if hasattr(env, attribute):
            return env
        env = env.venv if isinstance(env, VecEnvWrapper) else None
    return None


class TrainingStats(BaseCallback):
    """Log, once per rollout, what finished episodes reported and what the mixture did.

    Scalars: ``charts/sustained_rate`` (``sustain_steps`` consecutive steps at the goal), ``charts/success_rate``
    (any time), ``charts/held_rate`` (at the end), ``rewards/<term>`` (episode sums), and with a residual-MoE
    composer ``charts/mixing_entropy`` and ``charts/residual_norm``.

    :param verbose: SB3 verbosity.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)
        self._outcomes: dict[str, list[float]] = defaultdict(list)
        self._entropy: list[float] = []
        self._residual: list[float] = []
        self._composer: VecEnv | None = None

    def _on_training_start(self) -> None:
        self._composer = find_wrapper_with(self.training_env, "last_weights")

    def _on_step(self) -> bool:
        dones, infos = self.locals["dones"], self.locals["infos"]
        for i in np.flatnonzero(dones):
            info = infos[i]
            if "is_success" in info:
                self._outcomes["charts/sustained_rate"].append(float(info.get("is_sustained", False)))
                self._outcomes["charts/success_rate"].append(float(info["is_success"]))
                self._outcomes["charts/held_rate"].append(float(info.get("is_held", False)))
            for term, value in info.get("reward_terms", {}).items():
                self._outcomes[f"rewards/{term}"].append(value)
        if self._composer is not None and getattr(self._composer, "last_weights", None) is not None:
            w = np.asarray(self._composer.last_weights)
            self._entropy.append(float(-(w * np.log(np.clip(w, 1e-12, 1.0))).sum(axis=1).mean()))
            self._residual.append(float(np.linalg.norm(self._composer.last_residual, axis=1).mean()))
        return True

    def _on_rollout_end(self) -> None:
        for key, values in self._outcomes.items():
            if values:
                self.logger.record(key, float(np.mean(values)))
        if self._entropy:
            self.logger.record("charts/mixing_entropy", float(np.mean(self._entropy)))
            self.logger.record("charts/residual_norm", float(np.mean(self._residual)))
        self._outcomes.clear()
        self._entropy.clear()
        self._residual.clear()
