"""Grasp proposals: the pre-grasp pose the stage-1 reward pulls the hand towards."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GraspProposal:
    """A hand pose relative to an object.

    :param hand_point: (3,) the reference hand point in the object frame, metres.
    :param palm_quat: (4,) palm orientation in the object frame, (w, x, y, z).
    :param hand_qpos: (22,) hand joint angles in the reference DOF order (``envs.scene.HAND_JOINTS``).
    """

    hand_point: np.ndarray
    palm_quat: np.ndarray
    hand_qpos: np.ndarray

    def __post_init__(self) -> None:
        for name, width in (("hand_point", 3), ("palm_quat", 4), ("hand_qpos", 22)):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (width,) or not np.all(np.isfinite(value)):
                raise ValueError(f"GraspProposal.{name} must be {width} finite numbers, got shape {value.shape}")
