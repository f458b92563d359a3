"""Bootstrap truncated episodes in one batched critic call instead of SB3's one-env-at-a-time loop."""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback


class BatchedTimeoutBootstrap(BaseCallback):
    """Add gamma * V(terminal observation) to the rewards of time-limit-truncated envs, batched.

    SB3's ``collect_rollouts`` does the same per env after the callback's ``on_step``; with thousands of envs
    truncating on the same step that loop dominates. This callback runs first, adds the bootstrap to the
    ``rewards`` array SB3 is about to store, and clears ``TimeLimit.truncated`` so SB3's loop skips those envs.
    The stored rollout is identical.

    :param verbose: SB3 verbosity.
    """

    def __init__(self, verbose: int = 0) -> None:
        super().__init__(verbose)

    def _on_step(self) -> bool:
        dones, infos, rewards = self.locals["dones"], self.locals["infos"], self.locals["rewards"]
        ids = [i for i in np.flatnonzero(dones) if infos[i].get("TimeLimit.truncated", False)
               and infos[i].get("terminal_observation") is not None]  # fmt: skip
        if not ids:
            return True
        policy = self.model.policy
        terminal = np.stack([infos[i]["terminal_observation"] for i in ids])
        with th.no_grad():
            values = policy.predict_values(policy.obs_to_tensor(terminal)[0]).cpu().numpy().ravel()
        rewards[ids] += self.model.gamma * values
        for i in ids:
            infos[i]["TimeLimit.truncated"] = False  # handled: SB3 must not add it again
        return True
