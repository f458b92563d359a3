"""More torch threads for the PPO update than for the rollout, on machines with cores to spare."""

from __future__ import annotations

import os

import torch as th
from stable_baselines3.common.callbacks import BaseCallback


class UpdateThreads(BaseCallback):
    """Switch torch to ``update_threads`` threads while the algorithm trains and back for the rollout.

    During a rollout the physics threads use the cores and one torch thread runs the policy; during the update
    the physics is idle, so torch can have the cores. On a busy machine extra torch threads are much slower
    (measured ~10x on 2 cores beside another training run), so this is opt-in per YAML preset.

    :param update_threads: torch threads during the update; 0 means every core of the machine.
    :param verbose: SB3 verbosity.
    """

    def __init__(self, update_threads: int = 0, verbose: int = 0) -> None:
        super().__init__(verbose)
        if update_threads < 0:
            raise ValueError(f"update_threads must be >= 0 (0 = all cores), got {update_threads}")
        self.update_threads = update_threads or (os.cpu_count() or 1)
        self.rollout_threads = th.get_num_threads()

    def _on_training_start(self) -> None:
        self.rollout_threads = th.get_num_threads()

    def _on_rollout_start(self) -> None:
        th.set_num_threads(self.rollout_threads)

    def _on_rollout_end(self) -> None:
        th.set_num_threads(self.update_threads)

    def _on_training_end(self) -> None:
        th.set_num_threads(self.rollout_threads)

    def _on_step(self) -> bool:
        return True
