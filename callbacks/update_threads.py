"""More torch threads for the PPO update than for the rollout, when the machine has cores to spare."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch as th
from stable_baselines3.common.callbacks import BaseCallback


class UpdateThreads(BaseCallback):
    """Switch torch to more threads while the algorithm updates, and back for the rollout.

    During a rollout the physics threads use the cores and one torch thread runs the policy; during the update
    the physics is idle, so torch can have the cores (quiet 2-core machine: 1.3x the PPO env-steps/s,
    ``benchmarks/train_throughput.py``). On a busy machine extra torch threads are far slower instead (~10x,
    measured beside another training run), so by default the callback times one update with the rollout's
    thread count and one with ``update_threads`` every ``probe_every`` updates and uses the faster in between.

    :param update_threads: torch threads to try for the update; 0 means every core of the machine.
    :param probe_every: updates between two timing probes; 0 skips probing and always uses ``update_threads``.
    :param verbose: SB3 verbosity.
    :param clock: seconds from an arbitrary origin that the probes are timed with (only differences are used);
        ``time.perf_counter`` by default. Injectable so that tests can drive the choice without real timing.
    """

    def __init__(self, update_threads: int = 0, probe_every: int = 50, verbose: int = 0,
                 clock: Callable[[], float] = time.perf_counter) -> None:  # fmt: skip
        super().__init__(verbose)
        if update_threads < 0:
            raise ValueError(f"update_threads must be >= 0 (0 = all cores), got {update_threads}")
        if probe_every < 0:
            raise ValueError(f"probe_every must be >= 0 (0 = no probing), got {probe_every}")
        self.update_threads = update_threads or (os.cpu_count() or 1)
        self.probe_every = probe_every
        self.clock = clock
        self.rollout_threads = th.get_num_threads()
        self.chosen = self.update_threads
        self.updates = 0
        self._probe_seconds: dict[int, float] = {}
        self._began: float | None = None

    def _on_training_start(self) -> None:
        self.rollout_threads = th.get_num_threads()
        # an update timed at the end of a previous ``learn`` call never finished its probe: between the calls the
        # clock also ran over that call's end and this one's setup (env reset), which would count as update time
        self._began = None

    def _probing(self) -> bool:
        return self.probe_every > 0 and self.updates % self.probe_every < 2

    def _on_rollout_end(self) -> None:
        if self._probing():  # first the rollout's count, then the candidate
            threads = self.rollout_threads if self.updates % self.probe_every == 0 else self.update_threads
        else:
            threads = self.chosen
        th.set_num_threads(threads)
        self._began = self.clock()

    def _on_rollout_start(self) -> None:
        if self._began is not None:
            if self._probing():
                self._probe_seconds[th.get_num_threads()] = self.clock() - self._began
                if len(self._probe_seconds) == 2 or self.rollout_threads == self.update_threads:
                    self.chosen = min(self._probe_seconds, key=self._probe_seconds.__getitem__)
                    self._probe_seconds = {}
                    self.logger.record("time/update_threads", self.chosen)
            self.updates += 1
        th.set_num_threads(self.rollout_threads)

    def _on_training_end(self) -> None:
        th.set_num_threads(self.rollout_threads)

    def _on_step(self) -> bool:
        return True
