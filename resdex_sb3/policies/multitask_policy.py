"""The baseline: one actor-critic that sees the whole hyper observation (shape code included) and acts directly."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from resdex_sb3.policies.geometry_unaware_policy import RESDEX_LOG_STD_INIT, RESDEX_NET_ARCH


class MultiTaskPolicy(ActorCriticPolicy):
    """Plain multi-task PPO policy with the same defaults as the ResDex policies (ELU, std 0.8, ResDex sizes).

    It is what the method is compared against: same observation and budget, no base policies, no mixture.

    :param observation_space: the flat hyper observation space.
    :param action_space: the 24-d hand action space.
    :param lr_schedule: learning-rate schedule (given by the algorithm).
    :param net_arch: hidden layers; ``None`` gives ResDex's ``pi=vf=[1024, 1024, 512, 512]``.
    :param activation_fn: hidden activation (ELU).
    :param log_std_init: initial log std of the Gaussian (``log(0.8)``).
    :param kwargs: the other ``ActorCriticPolicy`` arguments.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 net_arch: list[int] | dict[str, list[int]] | None = None, activation_fn: type[nn.Module] = nn.ELU,
                 log_std_init: float = RESDEX_LOG_STD_INIT, **kwargs: Any) -> None:  # fmt: skip
        super().__init__(observation_space, action_space, lr_schedule,
                         net_arch=RESDEX_NET_ARCH if net_arch is None else net_arch,
                         activation_fn=activation_fn, log_std_init=log_std_init, **kwargs)  # fmt: skip
