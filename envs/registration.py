"""Gym ids, one per variant, each with its config entry point."""

from __future__ import annotations

import gymnasium as gym

from envs.variants import VARIANTS, VISION_VARIANTS

ENTRY_POINT = "envs.single_env:ResDexGraspEnv"
VEC_ENTRY_POINT = "envs.factory:make_vec_env"


def register_envs() -> None:
    """Register ``ResDexBase-v0``, ``ResDexHyper-v0`` and ``ResDexVision-v0`` (idempotent).

    gymnasium refuses an unversioned id beside a versioned one of the same name; ``gym.make("ResDexHyper")``
    resolves to the latest version, so both spellings work.
    """
    for name, settings in VARIANTS.items():
        env_id = f"{name}-v0"
        # the vision task is a different class, so its id names its variant instead of listing task settings
        kwargs = {"variant": name} if name in VISION_VARIANTS else dict(settings)
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=ENTRY_POINT, kwargs=kwargs, disable_env_checker=True,
                         vector_entry_point=VEC_ENTRY_POINT)  # fmt: skip
