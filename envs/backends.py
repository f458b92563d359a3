"""Choose the physics engine behind the task: the one place that maps the ``backend`` option to a simulation class."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING

from envs.config import BACKENDS, DEFAULT_BACKEND
from envs.objects.spec import ObjectSpec
from envs.scene import Scene
from envs.sim import BatchedSim

if TYPE_CHECKING:
    from envs.warp_sim import WarpSim


def check_backend_options(backend: str, device: str | None) -> None:
    """Refuse an unknown backend, or a device for the CPU-only MuJoCo backend, in one line naming the option."""
    if backend not in BACKENDS:
        raise ValueError(f"option backend {backend!r} is not one of {BACKENDS}")
    if device is not None and backend != "warp":
        raise ValueError(f"option device {device!r} needs backend 'warp' (backend {backend!r} runs on the CPU)")


def make_sim(
    scene: Scene, objects: Sequence[ObjectSpec], backend: str = DEFAULT_BACKEND, num_threads: int = 0,
    device: str | None = None,
) -> BatchedSim | WarpSim:  # fmt: skip
    """The batched simulation of ``objects`` on ``backend`` (``num_threads`` applies to ``mujoco``, ``device`` to
    ``warp``)."""
    check_backend_options(backend, device)
    if backend == "mujoco":
        return BatchedSim(scene, objects, num_threads)
    missing = [m for m in ("warp", "mujoco_warp") if importlib.util.find_spec(m) is None]
    if missing:  # optional engine: say what to install instead of failing inside it
        raise ValueError(f"option backend 'warp' needs warp-lang and mujoco-warp installed (missing: {missing})")
    from envs.warp_sim import WarpSim

    return WarpSim(scene, objects, device=device)
