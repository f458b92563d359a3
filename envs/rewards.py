"""Reward terms of the three training modes, on batched arrays (reference: ResDex ``compute_hand_reward``).

Every term is returned separately so that training can log each one; the reward is their sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from envs import quaternions as quat

#: Distances are clipped as in the reference.
HAND_DIST_CLIP = 0.5
FINGER_DIST_CLIP = 3.0
NEAR_FINGER_DIST = 0.6
NEAR_HAND_DIST = 0.12
BONUS_RADIUS = 0.05
LIFT_MARGIN = 0.003  # goal-conditioned hand-up starts 3 mm above the object's rest height
LOOSE_LIFT_HEIGHT = 0.03  # stage 2: 3 cm above the table top
HIGH_LIFT_HEIGHT = 0.2  # flat 0.2 hand-up reward from 20 cm above the table top
# Ours (``base_hold``, ``stage2_hold``), not the paper's: per step inside the goal sphere, up to HOLD_WEIGHT for an
# object at rest at the goal's centre, falling linearly to 0 at the sphere's edge and halved at HOLD_SPEED. The
# paper's terms pay about as much for crossing the sphere as for staying, and almost nothing for centring: a
# base trained on them held the mug 4-5 cm off centre, on the sphere's edge, and dropped out of it by the end.
HOLD_WEIGHT = 1.0
HOLD_SPEED = 0.1  # m/s
PROPOSAL_WEIGHT = 0.5  # proposal term = -PROPOSAL_WEIGHT * proposal_delta; the grasp distance D = -(its episode sum)

TERMS = {
    "base": ("finger_dist", "hand_dist", "goal_hand", "hand_up", "bonus", "proposal"),
    "base_hold": ("finger_dist", "hand_dist", "goal_hand", "hand_up", "bonus", "proposal", "hold"),
    "stage1": ("goal_hand", "hand_up", "bonus", "proposal"),
    "stage2": ("goal_hand", "hand_up", "bonus"),
    "stage2_hold": ("goal_hand", "hand_up", "bonus", "hold"),
}


@dataclass(frozen=True)
class GraspQuantities:
    """What the reward depends on, one row per env.

    :param object_pos: (N, 3) object origin, world.
    :param hand_point: (N, 3) reference hand point, world.
    :param tip_points: (N, 5, 3) fingertip points, world.
    :param goal: (3,) goal point.
    :param lift_action: (N,) vertical root action.
    :param table_height: table top z.
    :param rest_height: (N,) object origin height above the table when resting.
    :param proposal_delta: (N,) weighted proposal distance (0 where an env has no proposal).
    :param proposal_match: (N,) bool, all three proposal thresholds met (True where no proposal).
    :param object_speed: (N,) object linear speed, m/s (only the ``hold`` term reads it).
    """

    object_pos: np.ndarray
    hand_point: np.ndarray
    tip_points: np.ndarray
    goal: np.ndarray
    lift_action: np.ndarray
    table_height: float
    rest_height: np.ndarray
    proposal_delta: np.ndarray
    proposal_match: np.ndarray
    object_speed: np.ndarray | None = None


def reward_terms(mode: str, q: GraspQuantities) -> dict[str, np.ndarray]:
    """The reward terms of ``mode`` (one of ``TERMS``); the reward is their sum. ``*_hold`` modes are ours: the
    paper's mode plus the ``hold`` term."""
    goal_dist = quat.distance(q.goal, q.object_pos)
    hand_dist = np.minimum(quat.distance(q.object_pos, q.hand_point), HAND_DIST_CLIP)
    finger_dist = np.minimum(quat.distance(q.object_pos[:, None, :], q.tip_points).sum(axis=-1), FINGER_DIST_CLIP)
    near = (finger_dist <= NEAR_FINGER_DIST) & (hand_dist <= NEAR_HAND_DIST)
    height = q.object_pos[:, 2]
    high = height >= q.table_height + HIGH_LIFT_HEIGHT
    in_bonus = goal_dist <= BONUS_RADIUS
    bonus = np.where(in_bonus, 1.0 / (1.0 + 10.0 * goal_dist), 0.0)
    terms: dict[str, np.ndarray] = {}
    if mode in ("base", "base_hold", "stage1"):
        lifted = height >= q.table_height + q.rest_height + LIFT_MARGIN
        terms["goal_hand"] = np.where(near & q.proposal_match, 0.9 - 2.0 * goal_dist, 0.0)
        terms["hand_up"] = np.where(near & high, 0.2, np.where(near & lifted, 0.1 + 0.1 * q.lift_action, 0.0))
        terms["bonus"] = bonus
        terms["proposal"] = -PROPOSAL_WEIGHT * q.proposal_delta
        if mode in ("base", "base_hold"):
            terms = {"finger_dist": -0.5 * finger_dist, "hand_dist": -1.0 * hand_dist, **terms}
    elif mode in ("stage2", "stage2_hold"):
        lifted = height >= q.table_height + LOOSE_LIFT_HEIGHT
        terms["goal_hand"] = np.where(near, 0.9 - 2.0 * goal_dist, 0.0)
        terms["hand_up"] = np.where(near & high, 0.2, np.where(near & lifted, 0.1 + 0.1 * q.lift_action, 0.0))
        terms["bonus"] = np.where(near, bonus, 0.0)
    else:
        raise ValueError(f"unknown reward mode {mode!r}; expected one of {tuple(TERMS)}")
    if mode.endswith("_hold"):
        if q.object_speed is None:
            raise ValueError(f"the {mode} reward needs object_speed")
        centred = np.clip(1.0 - goal_dist / BONUS_RADIUS, 0.0, 1.0)
        terms["hold"] = np.where(near, HOLD_WEIGHT * centred / (1.0 + q.object_speed / HOLD_SPEED), 0.0)
    return terms
