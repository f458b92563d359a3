"""imitation's ``DAggerTrainer`` with ResDex's data flow: a ring buffer in memory and one continuous rollout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from imitation.algorithms import bc
from imitation.algorithms.dagger import DAggerTrainer, NeedsDemosException
from imitation.util.logger import HierarchicalLogger
from stable_baselines3.common.vec_env import VecEnv

from envs.files import atomic_write
from resdex_sb3.dagger.buffering_collector import BufferingTrajectoryCollector
from resdex_sb3.dagger.transition_ring_buffer import TransitionRingBuffer

CHECKPOINT_FILE = "checkpoint-latest.pt"
POLICY_FILE = "policy-latest.zip"


class RingBufferDAggerTrainer(DAggerTrainer):
    """``DAggerTrainer`` whose rounds train BC on a :class:`TransitionRingBuffer` instead of every saved episode.

    A round is imitation's: collect with ``create_trajectory_collector()``, then ``extend_and_update()`` trains BC.
    Two things differ, both through the parent's own hooks:

    - ``create_trajectory_collector`` returns one :class:`BufferingTrajectoryCollector` for the whole run (its
      beta refreshed each round), so episodes run on across rounds as in ResDex, where the envs never reset for
      a training iteration, and the student acts deterministically;
    - ``_try_load_demos`` hands BC the ring buffer, i.e. the last ``capacity`` labelled steps, rather than
      reloading every demonstration file of every round so far.

    ``save_trainer`` writes one atomic checkpoint (round, student, optimiser, buffer, random state) rather than
    pickling the whole trainer per round; ``load_trainer_state`` restores it into a trainer built the same way.

    :param venv: the training env (its observations carry what both expert and student need).
    :param scratch_dir: folder of the checkpoint.
    :param rng: random state of the beta mixing.
    :param bc_trainer: imitation's BC over the student policy; its ``batch_size`` must be the buffer's.
    :param buffer: the ring buffer of labelled steps.
    :param beta_schedule: round -> beta (imitation's linear schedule when None).
    :param custom_logger: imitation logger shared with ``bc_trainer``.
    """

    def __init__(
        self,
        *,
        venv: VecEnv,
        scratch_dir: str | Path,
        rng: np.random.Generator,
        bc_trainer: bc.BC,
        buffer: TransitionRingBuffer,
        beta_schedule: Callable[[int], float] | None = None,
        custom_logger: HierarchicalLogger | None = None,
    ) -> None:
        if bc_trainer.batch_size != buffer.batch_size:
            raise ValueError(f"BC batch size {bc_trainer.batch_size} != ring buffer batch size {buffer.batch_size}")
        super().__init__(venv=venv, scratch_dir=scratch_dir, rng=rng, beta_schedule=beta_schedule,
                         bc_trainer=bc_trainer, custom_logger=custom_logger)  # fmt: skip
        self.buffer = buffer
        self._collector: BufferingTrajectoryCollector | None = None
        #: the student's actions of the last collected step (for the online imitation error)
        self.last_student_actions: np.ndarray | None = None

    def _student_actions(self, obs: np.ndarray) -> np.ndarray:
        self.last_student_actions = self.policy.predict(obs, deterministic=True)[0]
        return self.last_student_actions

    def create_trajectory_collector(self) -> BufferingTrajectoryCollector:
        beta = self.beta_schedule(self.round_num)
        if self._collector is None:
            self._collector = BufferingTrajectoryCollector(
                venv=self.venv, get_robot_acts=self._student_actions, beta=beta,
                save_dir=self._demo_dir_path_for_round(), rng=self.rng, buffer=self.buffer,
            )  # fmt: skip
        self._collector.beta = beta
        return self._collector

    def _try_load_demos(self) -> None:
        if len(self.buffer) == 0:
            raise NeedsDemosException(f"round {self.round_num}: the ring buffer is empty; step the collector first")
        self.bc_trainer.set_demonstrations(self.buffer)
        self._last_loaded_round = self.round_num

    # ------------------------------------------------------------------ checkpoints
    def save_trainer(self, extra: dict[str, Any] | None = None) -> tuple[Path, Path]:
        """Write ``checkpoint-latest.pt`` (all state) and ``policy-latest.zip`` (the student alone, SB3 format),
        each to a temporary file renamed over the old one, so a kill leaves the previous complete checkpoint."""
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "round_num": self.round_num, "policy": self.policy.state_dict(),
            "optimizer": self.bc_trainer.optimizer.state_dict(), "buffer": self.buffer.state_dict(),
            "rng": self.rng.bit_generator.state, "extra": dict(extra or {}),
        }  # fmt: skip
        checkpoint, policy = self.scratch_dir / CHECKPOINT_FILE, self.scratch_dir / POLICY_FILE
        atomic_write(checkpoint, lambda tmp: th.save(state, tmp))
        atomic_write(policy, lambda tmp: self.policy.save(str(tmp)))
        return checkpoint, policy

    def load_trainer_state(self, path: str | Path | None = None) -> dict[str, Any]:
        """Restore a ``save_trainer`` checkpoint (default: the scratch folder's); returns its ``extra`` dict."""
        path = Path(path) if path is not None else self.scratch_dir / CHECKPOINT_FILE
        state = th.load(path, map_location=self.policy.device, weights_only=False)  # our own file
        self.round_num = int(state["round_num"])
        self.policy.load_state_dict(state["policy"])
        self.bc_trainer.optimizer.load_state_dict(state["optimizer"])
        self.buffer.load_state_dict(state["buffer"])
        self.rng.bit_generator.state = state["rng"]
        self._last_loaded_round = -1
        return dict(state.get("extra") or {})
