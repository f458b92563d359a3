"""The ResDex hyper-policy: a plain actor-critic whose action is ``[k mixing logits, 24-d residual]``."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from envs.task import ACTION_DIM
from resdex_sb3.policies.geometry_unaware_policy import RESDEX_LOG_STD_INIT, RESDEX_NET_ARCH


class ResidualMoEPolicy(ActorCriticPolicy):
    """Stock ``ActorCriticPolicy`` over the full hyper observation, with ResDex defaults and mixture helpers.

    The mixture itself is *not* computed here: :class:`~resdex_sb3.composer.ResidualMoEComposer`, a VecEnv
    wrapper below SB3, turns ``[logits, residual]`` into ``sum softmax(logits)_i * base_i(obs) + residual``.
    To PPO that composition is part of the env dynamics, so the action it samples is the action it stores
    and scores, and log-probs stay exact (the Gaussian covers all ``k + 24`` dims, noise on the logits
    included, as in ResDex). SB3's ortho init puts gain 0.01 on the action net, so an untrained policy mixes
    the bases uniformly and adds a near-zero residual. The arguments are those of
    :class:`ActorCriticPolicy` plus ``residual_dim``; only the defaults differ.

    :param observation_space: the flat hyper observation space.
    :param action_space: Box of ``k + residual_dim`` dims (the composer's action space).
    :param lr_schedule: learning-rate schedule (given by the algorithm).
    :param net_arch: hidden layers; ``None`` gives ResDex's ``pi=vf=[1024, 1024, 512, 512]``.
    :param activation_fn: hidden activation; ResDex uses ELU.
    :param ortho_init: SB3's orthogonal init (gain sqrt(2) hidden, 0.01 action net, 1.0 value net), as ResDex.
    :param use_sde: generalised state-dependent exploration (ResDex: off).
    :param log_std_init: initial log std of the Gaussian; ``log(0.8)`` as ResDex's ``init_noise_std``.
    :param full_std: gSDE only: full (features x actions) std parameters.
    :param use_expln: gSDE only: use ``expln`` instead of ``exp``.
    :param squash_output: gSDE only: squash actions with tanh.
    :param features_extractor_class: features extractor; the full observation by default.
    :param features_extractor_kwargs: its kwargs.
    :param share_features_extractor: one extractor for actor and critic.
    :param normalize_images: unused for these flat observations; kept for SB3's signature.
    :param optimizer_class: optimizer of the policy.
    :param optimizer_kwargs: its kwargs beyond the learning rate (SB3 sets Adam's ``eps=1e-5`` when ``None``).
    :param residual_dim: width of the residual at the end of the action; the ``k`` dims before it are logits.
        0 for a weights-only composer (env option ``residual: false``): the action is the ``k`` logits alone. It is
        not inferred from the action space: a wrong width is refused where the bounds show it (see
        :func:`_check_action_layout`).
    :param residual_log_std_init: initial log std of the residual dims alone (``None``: ``log_std_init``, as
        ResDex). ResDex explores the residual with std 0.8 over ~10^9 steps per stage; on a CPU budget that
        noise drowns the bases (4 M steps from a uniform mixture with a std-0.8 residual lifted nothing), so
        the ``cpu`` preset starts the residual at 0.3 and PPO adapts it from there.
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
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        residual_dim: int = ACTION_DIM,
        residual_log_std_init: float | None = None,
    ) -> None:
        if not isinstance(action_space, spaces.Box) or len(action_space.shape) != 1:
            raise ValueError(f"ResidualMoEPolicy needs a 1-D Box action space, got {action_space}")
        _check_action_layout(action_space, residual_dim)
        self.residual_dim = residual_dim
        self.residual_log_std_init = residual_log_std_init
        if net_arch is None:
            net_arch = dict(pi=list(RESDEX_NET_ARCH), vf=list(RESDEX_NET_ARCH))
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
        if residual_log_std_init is not None:
            if use_sde:
                raise ValueError("residual_log_std_init needs use_sde=False (gSDE keeps a std matrix, not a vector)")
            with th.no_grad():
                self.log_std[self.num_bases :] = residual_log_std_init

    @property
    def num_bases(self) -> int:
        """Number of mixed base policies ``k`` (the logit dims at the front of the action)."""
        return int(self.action_space.shape[0]) - self.residual_dim

    def _get_constructor_parameters(self) -> dict[str, Any]:
        # ``policy.save``/``load`` rebuild from these; without it a non-default residual width would be lost.
        data = super()._get_constructor_parameters()
        data.update(residual_dim=self.residual_dim, residual_log_std_init=self.residual_log_std_init)
        return data


def _check_action_layout(action_space: spaces.Box, residual_dim: int) -> None:
    """Refuse an action space that cannot be ``[k >= 1 logits, residual_dim-d residual]``.

    The width alone cannot tell ``k`` from ``residual_dim``, but the composer's bounds can: all logits share one
    bound (``logit_bound``), so logit dims with different bounds mean that part of a residual was taken for logits
    (``residual_dim=0`` on a composer with a residual). A ``residual_dim`` too large for a weights-only composer
    is caught when it leaves no logits; with more than 24 bases it cannot be seen here.
    """
    if isinstance(residual_dim, bool) or not isinstance(residual_dim, int) or residual_dim < 0:
        raise ValueError(f"residual_dim must be a whole number >= 0, not {residual_dim!r}")
    width = int(action_space.shape[0])
    hint = ("a weights-only composer (env option residual: false) needs residual_dim=0, one with a residual "
            f"residual_dim={ACTION_DIM}; the env must be wrapped in ResidualMoEComposer")  # fmt: skip
    if width <= residual_dim:
        raise ValueError(f"action space of width {width} leaves no mixing logits before a {residual_dim}-d "
                         f"residual: {hint}")  # fmt: skip
    k = width - residual_dim
    low, high = action_space.low[:k], action_space.high[:k]
    if (low != low[0]).any() or (high != high[0]).any():
        raise ValueError(f"the first {k} action dims, taken as mixing logits with residual_dim={residual_dim}, do not "
                         f"share one bound (lows {sorted(set(low.tolist()))}, highs {sorted(set(high.tolist()))}): "
                         f"part of a residual is read as logits; {hint}")  # fmt: skip
