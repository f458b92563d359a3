"""ResDex policies for SB3: the geometry-unaware base policy, the residual-MoE hyper-policy, the vision student
and their extractors.

``POLICY_ALIASES`` extends an algorithm's ``policy_aliases`` so the classes can be named by string, e.g.
``class ResDexPPO(PPO): policy_aliases = {**PPO.policy_aliases, **POLICY_ALIASES}``.
"""

from __future__ import annotations

from stable_baselines3.common.policies import BasePolicy

from resdex_sb3.policies.geometry_unaware_policy import BASE_OBS_DIM, GeometryUnawarePolicy
from resdex_sb3.policies.multitask_policy import MultiTaskPolicy
from resdex_sb3.policies.obs_slice import ObsSlice
from resdex_sb3.policies.point_cloud_extractor import PointCloudExtractor
from resdex_sb3.policies.residual_moe_policy import ResidualMoEPolicy
from resdex_sb3.policies.vision_student_policy import VisionStudentPolicy

POLICY_ALIASES: dict[str, type[BasePolicy]] = {
    "GeometryUnawarePolicy": GeometryUnawarePolicy,
    "ResidualMoEPolicy": ResidualMoEPolicy,
    "MultiTaskPolicy": MultiTaskPolicy,
    "VisionStudentPolicy": VisionStudentPolicy,
}

__all__ = ["BASE_OBS_DIM", "POLICY_ALIASES", "GeometryUnawarePolicy", "MultiTaskPolicy", "ObsSlice",
           "PointCloudExtractor", "ResidualMoEPolicy", "VisionStudentPolicy"]
