"""Switch the reward from stage 1 (grasp-proposal term) to stage 2 (loosened) inside one run."""

from __future__ import annotations

from stable_baselines3.common.callbacks import BaseCallback


class StageSwitch(BaseCallback):
    """At ``switch_at`` env steps call the task's ``set_reward_mode(reward_mode)`` (all envs at once).

    The pipeline runs the two stages as two runs (stage 2 initialised from stage 1), as the reference does;
    this callback is the single-run alternative for YAML users.

    :param switch_at: env steps (summed over envs) at which to switch.
    :param reward_mode: the reward after the switch (``stage2``).
    :param verbose: SB3 verbosity.
    """

    def __init__(self, switch_at: int, reward_mode: str = "stage2", verbose: int = 0) -> None:
        super().__init__(verbose)
        self.switch_at, self.reward_mode = switch_at, reward_mode
        self.switched = False

    def _on_step(self) -> bool:
        if not self.switched and self.num_timesteps >= self.switch_at:
            self.training_env.env_method("set_reward_mode", self.reward_mode, indices=[0])
            self.switched = True
            self.logger.record("charts/stage", 2)
            if self.verbose:
                print(f"reward switched to {self.reward_mode} at {self.num_timesteps} steps")
        return True
