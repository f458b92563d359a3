"""Surface point clouds of objects made of convex parts (the reference samples 4,096 points per object).

Points are drawn on every part's surface in proportion to its area, and those buried inside another part are
dropped, so the cloud covers the union's outer surface only. Sampling is deterministic given the seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from envs.objects.spec import ConvexPart, ObjectSpec, quat_to_mat

if TYPE_CHECKING:
    from scipy.spatial import ConvexHull

NUM_SURFACE_POINTS = 4096
_INSIDE_MARGIN = 1e-4  # metres: points this far inside another part are hidden by it


def sample_surface(obj: ObjectSpec, num_points: int = NUM_SURFACE_POINTS, seed: int = 0) -> np.ndarray:
    """``num_points`` points (float32, object frame, metres) on the outer surface of ``obj``."""
    rng = np.random.default_rng(seed)
    areas = np.array([part_area(p) for p in obj.parts])
    collected: list[np.ndarray] = []
    need = num_points
    for _ in range(8):  # oversample, reject buried points, repeat until enough remain
        draw = max(2 * need, 256)
        counts = rng.multinomial(draw, areas / areas.sum())
        points = np.concatenate([_to_object(p, _sample_part(p, c, rng)) for p, c in zip(obj.parts, counts)])
        visible = points[~_inside_any(obj.parts, points)]
        collected.append(visible)
        need -= len(visible)
        if need <= 0:
            break
    cloud = np.concatenate(collected)
    if len(cloud) < num_points:
        raise RuntimeError(f"object {obj.name!r}: could not sample {num_points} visible surface points")
    keep = rng.choice(len(cloud), num_points, replace=False)
    return cloud[keep].astype(np.float32)


def part_area(part: ConvexPart) -> float:
    """Surface area of one part, m^2 (ellipsoids by Thomsen's approximation)."""
    a, b, c = part.size
    if part.kind == "box":
        return 8.0 * (a * b + b * c + a * c)
    if part.kind == "sphere":
        return 4.0 * np.pi * a * a
    if part.kind == "cylinder":
        return 2.0 * np.pi * a * (a + 2.0 * b)
    if part.kind == "capsule":
        return 4.0 * np.pi * a * a + 4.0 * np.pi * a * b
    if part.kind == "ellipsoid":
        p = 1.6075
        return 4.0 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3.0) ** (1.0 / p)
    return float(_convex_hull(np.asarray(part.vertices)).area)


def _sample_part(part: ConvexPart, n: int, rng: np.random.Generator) -> np.ndarray:
    """n surface points in the part's own frame."""
    if n == 0:
        return np.zeros((0, 3))
    a, b, c = part.size
    if part.kind == "box":
        half = np.array([a, b, c])
        face_area = np.array([b * c, b * c, a * c, a * c, a * b, a * b])
        face = rng.choice(6, n, p=face_area / face_area.sum())
        points = rng.uniform(-half, half, size=(n, 3))
        axis, sign = face // 2, np.where(face % 2 == 0, -1.0, 1.0)
        points[np.arange(n), axis] = sign * half[axis]
        return points
    if part.kind in ("sphere", "ellipsoid"):
        direction = _unit(rng.normal(size=(n, 3)))
        radii = np.array([a, a, a]) if part.kind == "sphere" else np.array([a, b, c])
        return direction * radii
    if part.kind == "cylinder":
        side, cap = 2 * np.pi * a * 2 * b, 2 * np.pi * a * a
        on_side = rng.random(n) < side / (side + cap)
        angle = rng.uniform(0, 2 * np.pi, n)
        radius = np.where(on_side, a, a * np.sqrt(rng.random(n)))
        z = np.where(on_side, rng.uniform(-b, b, n), np.where(rng.random(n) < 0.5, -b, b))
        return np.stack([radius * np.cos(angle), radius * np.sin(angle), z], axis=1)
    if part.kind == "capsule":
        side, caps = 4 * np.pi * a * b, 4 * np.pi * a * a
        on_side = rng.random(n) < side / (side + caps)
        angle = rng.uniform(0, 2 * np.pi, n)
        direction = _unit(rng.normal(size=(n, 3)))
        tube = np.stack([a * np.cos(angle), a * np.sin(angle), rng.uniform(-b, b, n)], axis=1)
        cap = a * direction + np.where(direction[:, 2:3] >= 0, 1.0, -1.0) * np.array([0.0, 0.0, b])
        return np.where(on_side[:, None], tube, cap)
    return _sample_hull(np.asarray(part.vertices, dtype=float), n, rng)


def _sample_hull(vertices: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    hull = _convex_hull(vertices)
    tri = vertices[hull.simplices]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    face = rng.choice(len(tri), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u, v = np.where(flip, 1 - u, u), np.where(flip, 1 - v, v)
    t = tri[face]
    return t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])


def _to_object(part: ConvexPart, local: np.ndarray) -> np.ndarray:
    return local @ quat_to_mat(part.quat).T + np.asarray(part.pos)


def _inside_any(parts: tuple[ConvexPart, ...], points: np.ndarray) -> np.ndarray:
    """Points strictly inside at least one part (by more than the margin); own-surface points are never inside."""
    inside = np.zeros(len(points), dtype=bool)
    for part in parts:
        local = (points - np.asarray(part.pos)) @ quat_to_mat(part.quat)
        inside |= _inside_part(part, local)
    return inside


def _inside_part(part: ConvexPart, p: np.ndarray) -> np.ndarray:
    a, b, c = part.size
    m = _INSIDE_MARGIN
    if part.kind == "box":
        return np.all(np.abs(p) < np.array([a, b, c]) - m, axis=1)
    if part.kind == "sphere":
        return np.linalg.norm(p, axis=1) < a - m
    if part.kind == "ellipsoid":
        return np.linalg.norm(p / np.array([a, b, c]), axis=1) < 1.0 - m / max(a, b, c)
    if part.kind == "cylinder":
        return (np.hypot(p[:, 0], p[:, 1]) < a - m) & (np.abs(p[:, 2]) < b - m)
    if part.kind == "capsule":
        axis_point = np.clip(p[:, 2], -b, b)
        return np.hypot(np.hypot(p[:, 0], p[:, 1]), p[:, 2] - axis_point) < a - m
    hull = _convex_hull(np.asarray(part.vertices, dtype=float))
    return np.all(p @ hull.equations[:, :3].T + hull.equations[:, 3] < -m, axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _convex_hull(vertices: np.ndarray) -> ConvexHull:
    """scipy's convex hull of ``vertices``. Imported on first use: scipy.spatial adds ~0.3 s to every process that
    imports this module (each training command, through the vision task), and only hull parts need it."""
    from scipy.spatial import ConvexHull

    return ConvexHull(vertices)
