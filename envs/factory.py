"""Build N batched envs: the entry point training code uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from envs.backends import check_backend_options
from envs.config import DEFAULT_BACKEND, SceneConfig, TaskConfig
from envs.objects.primitives import primitive_objects
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal
from envs.task import GraspTask
from envs.variants import VARIANTS, VISION_VARIANTS
from envs.vec_env import ResDexVecEnv
from envs.vision import VisionConfig, split_vision_options
from envs.vision_task import VisionGraspTask

def assign_objects(objects: Sequence[ObjectSpec], num_envs: int) -> list[ObjectSpec]:
    """Contiguous blocks of envs per object, as the reference (env i -> object floor(i * n_obj / N))."""
    if not objects:
        raise ValueError("no objects given")
    index = (np.arange(num_envs) * len(objects)) // num_envs
    return [objects[i] for i in index]


def make_vec_env(
    variant: str = "ResDexBase",
    num_envs: int = 64,
    objects: Sequence[ObjectSpec] | None = None,
    seed: int | None = None,
    scene_config: SceneConfig | None = None,
    shape_codes: Mapping[str, np.ndarray] | None = None,
    proposals: Mapping[str, GraspProposal] | None = None,
    num_threads: int = 0,
    render_mode: str | None = None,
    points: Mapping[str, np.ndarray] | None = None,
    backend: str = DEFAULT_BACKEND,
    device: str | None = None,
    **task_kwargs: Any,
) -> ResDexVecEnv:
    """N batched envs of ``variant`` (``ResDexBase``, ``ResDexHyper`` or ``ResDexVision``; ``-v0`` accepted)
    over ``objects``.

    ``task_kwargs`` override ``TaskConfig`` fields (for example ``reward_mode="stage2"``) and, for
    ``ResDexVision``, ``VisionConfig`` fields (``cloud_mode="camera"``); ``points`` are the objects' stored
    surface points (object name -> (M, 3)) its ``gt_pose`` clouds are drawn from. ``backend`` is the physics
    engine (``mujoco``: C MuJoCo on ``num_threads`` CPU threads; ``warp``: MuJoCo Warp on ``device``, CUDA when
    present by default).
    """
    name = variant.removesuffix("-v0")
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    check_backend_options(backend, device)
    vision_kwargs: dict[str, Any] = {}
    if name in VISION_VARIANTS:
        vision_kwargs, task_kwargs = split_vision_options(task_kwargs)
    config = TaskConfig.from_kwargs(**{**VARIANTS[name], **task_kwargs})
    assigned = assign_objects(list(objects or primitive_objects()), num_envs)
    common = dict(scene_config=scene_config, shape_codes=shape_codes, proposals=proposals, num_threads=num_threads,
                  autoreset=True, backend=backend, device=device)  # fmt: skip
    if name in VISION_VARIANTS:
        task: GraspTask = VisionGraspTask(assigned, config, VisionConfig.from_kwargs(**vision_kwargs), points, **common)
    else:
        task = GraspTask(assigned, config, **common)
    env = ResDexVecEnv(task, render_mode=render_mode)
    if seed is not None:
        env.seed(seed)
    return env
