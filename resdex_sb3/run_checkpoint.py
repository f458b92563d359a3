"""The experiment manager's periodic checkpoint, which a killed run resumes from.

It lives beside ``run_folder`` rather than in ``callbacks/``: the manager installs it on every run (no YAML
names it), and it writes nothing but the run-folder layout that ``run_folder`` owns.
"""

from __future__ import annotations

from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback

from resdex_sb3.run_folder import write_checkpoint


class RunCheckpoint(BaseCallback):
    """Every ``save_freq`` env steps, and when training ends, write the run's checkpoint
    (``run_folder.write_checkpoint``: ``checkpoint.zip``, its statistics, then ``checkpoint.json``).

    :param save_freq: env steps (summed over envs) between checkpoints.
    :param run_dir: the run folder.
    :param env_id: gym id (names the statistics sub-folder, as rl-zoo does).
    :param verbose: SB3 verbosity (1: print each checkpoint).
    """

    def __init__(self, save_freq: int, run_dir: str | Path, env_id: str, verbose: int = 0) -> None:
        super().__init__(verbose)
        self.save_freq, self.run_dir, self.env_id = save_freq, Path(run_dir), env_id
        self._last_saved = 0

    def _on_training_start(self) -> None:
        self._last_saved = self.num_timesteps  # a continued run counts from where it starts

    def _on_step(self) -> bool:
        if self.num_timesteps - self._last_saved >= self.save_freq:
            self.save()
        return True

    def _on_training_end(self) -> None:
        self.save()

    def save(self) -> None:
        self._last_saved = self.num_timesteps
        path = write_checkpoint(self.model, self.run_dir, self.env_id)
        if self.verbose:
            print(f"checkpoint at {self.num_timesteps} steps: {path}")
