"""Batched quaternion helpers on (..., 4) arrays in MuJoCo's (w, x, y, z) order."""

from __future__ import annotations

import numpy as np


def multiply(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product q * r."""
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ],
        axis=-1,
    )


def conjugate(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def from_yaw(yaw: np.ndarray) -> np.ndarray:
    """Rotations about world z by ``yaw`` radians, (N,) -> (N, 4)."""
    half = 0.5 * np.asarray(yaw, dtype=float)
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, zeros, np.sin(half)], axis=-1)


def angle(q: np.ndarray) -> np.ndarray:
    """Rotation angle in [0, pi] of unit quaternions."""
    return 2.0 * np.arcsin(np.clip(np.linalg.norm(q[..., 1:], axis=-1), 0.0, 1.0))


def rotate_yaw(v: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate vectors v (N, ..., 3) about world z; cos/sin are (N,). Cheaper than ``rotate`` for pure yaw."""
    shape = (-1,) + (1,) * (v.ndim - 2)
    c, s = cos.reshape(shape), sin.reshape(shape)
    x, y = v[..., 0], v[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, v[..., 2]], axis=-1)
