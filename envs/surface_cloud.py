"""``gt_pose`` point clouds: farthest-point subsets of each object's stored surface points, moved by the true pose."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from envs import quaternions as quat
from envs.objects.spec import ObjectSpec
from envs.objects.surface import sample_surface

# (object name, points fingerprint, num_points, variants, seed) -> (variants, num_points, 3): FPS costs seconds for
# a full object set, and every env of every split evaluation would redo it.
_FPS_CACHE: dict[tuple, np.ndarray] = {}


def farthest_point_indices(clouds: np.ndarray, num_points: int, starts: np.ndarray) -> np.ndarray:
    """Farthest-point sampling of ``num_points`` indices in each cloud of ``clouds`` (B, M, 3), from ``starts`` (B,).

    Batched over clouds; the loop runs over the ``num_points`` picks, which FPS makes sequential.
    """
    b, m, _ = clouds.shape
    if num_points > m:
        raise ValueError(f"cannot pick {num_points} distinct points from clouds of {m}")
    x, y, z = (np.ascontiguousarray(clouds[..., k], dtype=np.float32) for k in range(3))
    rows = np.arange(b)
    picked = np.empty((b, num_points), dtype=np.int64)
    nearest = np.full((b, m), np.inf, dtype=np.float32)  # squared distance to the closest picked point
    last = np.asarray(starts, dtype=np.int64)
    for j in range(num_points):
        picked[:, j] = last
        dx = x - x[rows, last][:, None]
        dy = y - y[rows, last][:, None]
        dz = z - z[rows, last][:, None]
        np.minimum(nearest, dx * dx + dy * dy + dz * dz, out=nearest)
        last = np.argmax(nearest, axis=1)
    return picked


class SurfaceCloudSampler:
    """Per env, ``num_points`` surface points of its object placed by the object's true pose (the paper's cloud).

    FPS of points given in the object frame does not depend on the pose, so the subsets are computed once per
    object (``variants`` of them, each from a different random start point, like the reference's random start
    index) and each step only picks a variant per env and applies the pose: a gather and a rotation.

    :param objects: the object of every env.
    :param points: object name -> (M, 3) stored surface points in the object frame; objects missing here are
        sampled with ``envs.objects.surface.sample_surface``.
    :param num_points: points per cloud.
    :param variants: FPS subsets per object.
    :param seed: seed of the start points.
    """

    def __init__(
        self,
        objects: Sequence[ObjectSpec],
        points: Mapping[str, np.ndarray] | None = None,
        num_points: int = 512,
        variants: int = 8,
        seed: int = 0,
    ) -> None:
        points = points or {}
        names = list(dict.fromkeys(o.name for o in objects))
        by_name = {o.name: o for o in objects}
        index = {n: i for i, n in enumerate(names)}
        self.object_index = np.array([index[o.name] for o in objects])
        clouds = {n: np.asarray(points[n], dtype=np.float32) if n in points else sample_surface(by_name[n])
                  for n in names}  # fmt: skip
        self.subsets = np.stack([self._subsets(n, clouds[n], num_points, variants, seed) for n in names])
        self.num_points = num_points
        self.variants = variants

    @staticmethod
    def _subsets(name: str, cloud: np.ndarray, num_points: int, variants: int, seed: int) -> np.ndarray:
        key = (name, cloud.shape, float(cloud.sum(dtype=np.float64)), num_points, variants, seed)
        cached = _FPS_CACHE.get(key)
        if cached is None:
            starts = np.random.default_rng(seed).integers(0, len(cloud), variants)
            picks = farthest_point_indices(np.broadcast_to(cloud, (variants, *cloud.shape)), num_points, starts)
            cached = cloud[picks]
            _FPS_CACHE[key] = cached
        return cached

    def sample(self, position: np.ndarray, orientation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """World-frame clouds ``(N, num_points, 3)`` for object poses ``position`` (N, 3), ``orientation`` (N, 4)."""
        variant = rng.integers(0, self.variants, len(self.object_index))
        local = self.subsets[self.object_index, variant]  # (N, P, 3)
        return quat.rotate(orientation[:, None, :], local) + position[:, None, :]
