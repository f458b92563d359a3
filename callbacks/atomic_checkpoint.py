"""Periodic checkpoints a killed run can resume from: model, normalisation stats and step count, all atomic."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecNormalize

CHECKPOINT_NAME = "checkpoint.zip"
CHECKPOINT_INFO = "checkpoint.json"


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def atomic_save_model(model: BaseAlgorithm, path: Path) -> None:
    """``model.save`` to a temporary file, then rename over ``path``."""
    tmp = _atomic_target(path)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_save_vecnormalize(env: VecNormalize, path: Path) -> None:
    """``VecNormalize.save`` to a temporary file, then rename over ``path``."""
    tmp = _atomic_target(path)
    try:
        env.save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class AtomicCheckpoint(BaseCallback):
    """Every ``save_freq`` env steps write ``checkpoint.zip``, the VecNormalize stats and ``checkpoint.json``.

    The stats go to ``<run>/<env_id>/vecnormalize.pkl``, where rl-zoo's ``-i <run>/checkpoint.zip`` finds them.
    ``checkpoint.json`` is written last, so it only ever names a complete checkpoint.

    :param save_freq: env steps (summed over envs) between checkpoints.
    :param run_dir: the run folder.
    :param env_id: gym id (names the stats sub-folder, as rl-zoo does).
    :param verbose: SB3 verbosity.
    """

    def __init__(self, save_freq: int, run_dir: str | Path, env_id: str, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_freq, self.run_dir, self.env_id = save_freq, Path(run_dir), env_id
        self._last_saved = 0

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last_saved >= self.save_freq:
            self.save()
        return True

    def _on_training_end(self) -> None:
        self.save()

    def save(self) -> None:
        self._last_saved = self.num_timesteps
        atomic_save_model(self.model, self.run_dir / CHECKPOINT_NAME)
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            atomic_save_vecnormalize(vec_normalize, self.run_dir / self.env_id / "vecnormalize.pkl")
        info = self.run_dir / CHECKPOINT_INFO
        tmp = _atomic_target(info)
        tmp.write_text(json.dumps({"num_timesteps": int(self.num_timesteps), "model": CHECKPOINT_NAME}) + "\n")
        os.replace(tmp, info)
        if self.verbose:
            print(f"checkpoint at {self.num_timesteps} steps: {self.run_dir / CHECKPOINT_NAME}")
