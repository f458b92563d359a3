"""The registered task variants and their settings: constants only, so that registering the gym ids (on
``import envs``) loads neither the simulator nor any learning code."""

from __future__ import annotations

from typing import Any

#: Task settings of each registered variant.
VARIANTS: dict[str, dict[str, Any]] = {
    "ResDexBase": {"obs_mode": "base", "reward_mode": "base"},
    "ResDexHyper": {"obs_mode": "hyper", "reward_mode": "stage1"},
    # student observation + the hyper observation as its privileged part (envs.vision); the reward is unused
    # by DAgger, stage 2 is the expert's final one
    "ResDexVision": {"obs_mode": "hyper", "reward_mode": "stage2"},
}
#: Variants built on ``VisionGraspTask``; their options may also hold ``VisionConfig`` fields.
VISION_VARIANTS: frozenset[str] = frozenset({"ResDexVision"})
