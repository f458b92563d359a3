"""ResDex's DAgger loss as an imitation BC loss functor: MSE of the student's deterministic action."""

from __future__ import annotations

import dataclasses

import torch as th
import torch.nn.functional as F
from imitation.algorithms.bc import BCTrainingMetrics
from stable_baselines3.common.policies import ActorCriticPolicy


@dataclasses.dataclass(frozen=True)
class DeterministicMSELoss:
    """``loss = mean((mode(pi(obs)) - expert_action)^2) + l2_weight * |theta|^2 / 2``.

    Drop-in for ``bc.BC.loss_calculator`` (same call and return type as imitation's
    ``BehaviorCloningLossCalculator``). The student is used deterministically, so only its mean is trained; the
    Gaussian's log-likelihood of the expert action is reported (``bc/neglogp``, ``bc/prob_true_act``) but not
    optimised, and ``bc/loss`` is the MSE.

    :param l2_weight: weight of the L2 penalty on the parameters (ResDex: none).
    """

    l2_weight: float = 0.0

    def __call__(self, policy: ActorCriticPolicy, obs: th.Tensor, acts: th.Tensor) -> BCTrainingMetrics:
        distribution = policy.get_distribution(obs)
        mse = F.mse_loss(distribution.mode(), acts)
        with th.no_grad():
            log_prob = distribution.log_prob(acts).mean()
        zero = th.zeros((), device=mse.device)
        l2_norm = sum(th.sum(th.square(w)) for w in policy.parameters()) / 2 if self.l2_weight else zero
        l2_loss = self.l2_weight * l2_norm
        return BCTrainingMetrics(neglogp=-log_prob, entropy=None, ent_loss=zero, prob_true_act=th.exp(log_prob),
                                 l2_norm=l2_norm, l2_loss=l2_loss, loss=mse + l2_loss)  # fmt: skip
