"""The ResDex base policy: an actor-critic that sees only the geometry-unaware base observation."""

from __future__ import annotations

import math
from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from envs.config import TaskConfig
from envs.task import observation_dim
from resdex_sb3.policies.obs_slice import ObsSlice

#: Width of the base observation (proprioception, object position, previous action; no shape information).
#: The hyper observation starts with exactly these dims, which is what lets a base act inside the mixture.
BASE_OBS_DIM: int = observation_dim(TaskConfig(obs_mode="base"))
#: Hidden layers of every ResDex network (base, hyper-policy, teacher), separate for actor and critic.
RESDEX_NET_ARCH: tuple[int, ...] = (1024, 1024, 512, 512)
#: ResDex's ``init_noise_std`` of 0.8, as SB3's state-independent log std.
RESDEX_LOG_STD_INIT: float = math.log(0.8)


class GeometryUnawarePolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` with the ResDex base-policy defaults baked in, so a zoo YAML can name it alone.

    Both actor and critic read only ``obs[:, :128]`` through an :class:`ObsSlice` features extractor, so
    the same policy trains on the 128-d ``ResDexBase`` observation and, unchanged, on the 202-d ``ResDexHyper``
    one: whatever follows the prefix (object rotation, velocities, shape code) cannot influence it.
    The arguments are those of :class:`ActorCriticPolicy`; only the defaults differ.

    :param observation_space: a 1-D Box at least ``BASE_OBS_DIM`` wide.
    :param action_space: the 24-d hand action space.
    :param lr_schedule: learning-rate schedule (given by the algorithm).
    :param net_arch: hidden layers; ``None`` gives ResDex's ``pi=vf=[1024, 1024, 512, 512]``. A list means the
        same layers for actor and critic, a dict ``pi``/``vf`` separate ones (tests use small nets).
    :param activation_fn: hidden activation; ResDex uses ELU.
    :param ortho_init: SB3's orthogonal init (gain sqrt(2) hidden, 0.01 action net, 1.0 value net), as ResDex.
    :param use_sde: generalised state-dependent exploration (ResDex: off).
    :param log_std_init: initial log std of the Gaussian; ``log(0.8)`` as ResDex's ``init_noise_std``.
    :param full_std: gSDE only: full (features x actions) std parameters.
    :param use_expln: gSDE only: use ``expln`` instead of ``exp``.
    :param squash_output: gSDE only: squash actions with tanh.
    :param features_extractor_class: features extractor; :class:`ObsSlice` by default.
    :param features_extractor_kwargs: its kwargs; ``None`` gives ``start=0, end=BASE_OBS_DIM`` with the default class.
    :param share_features_extractor: one extractor for actor and critic (a parameter-free slice, so sharing is free).
    :param normalize_images: unused for these flat observations; kept for SB3's signature.
    :param optimizer_class: optimizer of the policy.
    :param optimizer_kwargs: its kwargs beyond the learning rate (SB3 sets Adam's ``eps=1e-5`` when ``None``).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ELU,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = RESDEX_LOG_STD_INIT,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] = ObsSlice,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if net_arch is None:
            net_arch = dict(pi=list(RESDEX_NET_ARCH), vf=list(RESDEX_NET_ARCH))
        if features_extractor_kwargs is None and features_extractor_class is ObsSlice:
            features_extractor_kwargs = dict(start=0, end=BASE_OBS_DIM)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=net_arch,
            activation_fn=activation_fn,
            ortho_init=ortho_init,
            use_sde=use_sde,
            log_std_init=log_std_init,
            full_std=full_std,
            use_expln=use_expln,
            squash_output=squash_output,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            share_features_extractor=share_features_extractor,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
