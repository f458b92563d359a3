"""The vision student: a PointNet features extractor and the ResDex MLP head, acting on ``ResDexVision``."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from resdex_sb3.policies.geometry_unaware_policy import RESDEX_LOG_STD_INIT, RESDEX_NET_ARCH
from resdex_sb3.policies.point_cloud_extractor import PointCloudExtractor


class VisionStudentPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` with the reference student's defaults, used deterministically (its action is the mean).

    Reference student: MLP [1024, 1024, 512, 512] with ELU on [proprioception, 128-d PointNet feature], trained
    by DAgger with an MSE loss on its deterministic output. The Gaussian head and the (linear, unused) value
    head are SB3's, so the policy saves, loads and predicts like any SB3 policy: ``policy.save(path)``,
    ``VisionStudentPolicy.load(path)``, ``policy.predict(obs, deterministic=True)``. Its only inputs are the
    student slices of the observation (see :class:`PointCloudExtractor`).

    :param observation_space: the flat ``ResDexVision`` observation space.
    :param action_space: the 24-d hand action space.
    :param lr_schedule: learning-rate schedule (unused by DAgger, whose optimiser is imitation's BC's).
    :param net_arch: hidden layers; ``None`` gives ``pi=[1024, 1024, 512, 512]`` and no value layers.
    :param activation_fn: hidden activation (ELU).
    :param log_std_init: initial log std of the (unused) Gaussian spread.
    :param features_extractor_class: the features extractor (:class:`PointCloudExtractor`).
    :param features_extractor_kwargs: its keyword arguments (PointNet widths).
    :param share_features_extractor: one PointNet for actor and critic (the critic is not trained).
    :param kwargs: the other ``ActorCriticPolicy`` arguments.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ELU,
        log_std_init: float = RESDEX_LOG_STD_INIT,
        features_extractor_class: type[BaseFeaturesExtractor] = PointCloudExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        **kwargs: Any,
    ) -> None:
        if net_arch is None:
            net_arch = dict(pi=list(RESDEX_NET_ARCH), vf=[])
        super().__init__(observation_space, action_space, lr_schedule, net_arch=net_arch,
                         activation_fn=activation_fn, log_std_init=log_std_init,
                         features_extractor_class=features_extractor_class,
                         features_extractor_kwargs=features_extractor_kwargs,
                         share_features_extractor=share_features_extractor, **kwargs)  # fmt: skip
        # SB3's orthogonal init (gain 0.01 on the action net: an untrained student barely moves) also rewrites
        # the extractor; give the PointNet back the reference's Xavier init.
        if isinstance(self.features_extractor, PointCloudExtractor):
            self.features_extractor.init_weights()
