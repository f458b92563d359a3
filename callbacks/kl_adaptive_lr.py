"""The reference's KL-adaptive learning rate for SB3's PPO, applied between updates."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import update_learning_rate


class FixedRate:
    """A picklable constant learning-rate schedule (saved with the model in place of the YAML's value).

    :param value: the learning rate.
    """

    def __init__(self, value: float) -> None:
        self.value = float(value)

    def __call__(self, progress_remaining: float) -> float:
        return self.value


class KLAdaptiveLR(BaseCallback):
    """Adapt PPO's learning rate to a target KL, as ResDex's reference does (``desired_kl`` 0.016).

    After every update: KL above ``2 * target_kl`` divides the rate by ``factor`` (floor ``min_lr``); KL below
    ``target_kl / 2`` multiplies it by ``factor`` (cap ``max_lr``). The reference adapts after every minibatch;
    SB3's PPO exposes the KL only per update (``train/approx_kl``: the mean over the last epoch's minibatches),
    so this adapts once per update, which takes a few more updates to settle from a bad start. The rate in force
    lives in the optimizer, so a run continued with ``-i`` resumes from the rate it had reached.

    :param target_kl: the KL the rate is steered to.
    :param factor: multiplicative step of the rate.
    :param min_lr: lowest rate.
    :param max_lr: highest rate.
    :param verbose: SB3 verbosity.
    """

    def __init__(self, target_kl: float = 0.016, factor: float = 1.5, min_lr: float = 1e-5, max_lr: float = 1e-2,
                 verbose: int = 0) -> None:  # fmt: skip
        super().__init__(verbose)
        if target_kl <= 0 or factor <= 1 or not 0 < min_lr <= max_lr:
            raise ValueError("need target_kl > 0, factor > 1 and 0 < min_lr <= max_lr")
        self.target_kl, self.factor, self.min_lr, self.max_lr = target_kl, factor, min_lr, max_lr
        self.lr = min_lr
        self._updates_seen = 0

    def _on_training_start(self) -> None:
        current = self.model.policy.optimizer.param_groups[0]["lr"]
        self._set(min(max(current, self.min_lr), self.max_lr))
        self._updates_seen = self.model._n_updates

    def _on_rollout_start(self) -> None:
        self._adapt()

    def _on_training_end(self) -> None:
        self._adapt()  # the last update's KL, so that a continued run starts from the rate it implies

    def _adapt(self) -> None:
        if self.model._n_updates == self._updates_seen:  # no update since the last look
            return
        self._updates_seen = self.model._n_updates
        kl = self.logger.name_to_value.get("train/approx_kl")
        if kl is not None:
            self._set(self.next_rate(self.lr, float(kl)))

    def next_rate(self, lr: float, kl: float) -> float:
        """The rate after an update that measured ``kl`` at rate ``lr``."""
        if kl > 2.0 * self.target_kl:
            return max(lr / self.factor, self.min_lr)
        if kl < 0.5 * self.target_kl:
            return min(lr * self.factor, self.max_lr)
        return lr

    def _set(self, lr: float) -> None:
        self.lr = lr
        self.model.lr_schedule = FixedRate(lr)  # PPO.train() reads the schedule at the start of every update
        update_learning_rate(self.model.policy.optimizer, lr)
        self.logger.record("train/adaptive_lr", lr)

    def _on_step(self) -> bool:
        return True
