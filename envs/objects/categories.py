"""Household-like object categories built from convex primitives, each with its own variation.

Every generator draws dimensions from a ``numpy`` generator and returns the convex parts in a frame whose
origin is near the object's centre; ``envs.objects.embedded`` re-centres them on the bounding box. Objects
rest on the table in the pose given here (z up), and the hand comes from above, so the set mixes easy
upright solids with thin, flat, large and handled shapes that need a specific grasp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs import quaternions as quat
from envs.objects.spec import ConvexPart

Parts = list[ConvexPart]

_X_UP = (0.7071067811865476, 0.0, 0.7071067811865476, 0.0)  # rotates the part's z axis onto world x
_Y_UP = (0.7071067811865476, -0.7071067811865476, 0.0, 0.0)  # rotates the part's z axis onto world y


def _yaw_quat(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), 0.0, 0.0, float(np.sin(angle / 2)))


def _pitch_quat(angle: float) -> tuple[float, float, float, float]:
    return (float(np.cos(angle / 2)), 0.0, float(np.sin(angle / 2)), 0.0)


def _box(hx: float, hy: float, hz: float, pos=(0.0, 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)) -> ConvexPart:
    return ConvexPart("box", (hx, hy, hz), tuple(pos), tuple(quat))


def _cyl(r: float, h: float, pos=(0.0, 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)) -> ConvexPart:
    return ConvexPart("cylinder", (r, h), tuple(pos), tuple(quat))


def bottle(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.025, 0.038), rng.uniform(0.05, 0.08)
    neck_r, neck_h = rng.uniform(0.010, 0.016), rng.uniform(0.015, 0.035)
    return [_cyl(r, h), _cyl(neck_r, neck_h, (0, 0, h + neck_h)), _cyl(neck_r * 1.15, 0.006, (0, 0, h + 2 * neck_h))]


def can(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.026, 0.036), rng.uniform(0.035, 0.065)
    return [_cyl(r, h), _cyl(r * 0.9, 0.003, (0, 0, h + 0.003))]


def mug(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.03, 0.042), rng.uniform(0.035, 0.055)
    reach, t = rng.uniform(0.02, 0.03), 0.006
    arm_z = 0.6 * h
    return [
        _cyl(r, h),
        _box(reach / 2, t, t, (r + reach / 2, 0, arm_z)),
        _box(reach / 2, t, t, (r + reach / 2, 0, -arm_z)),
        _box(t, t, arm_z + t, (r + reach, 0, 0)),
    ]


def cup(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.028, 0.04), rng.uniform(0.04, 0.06)
    return [_cyl(r * 0.8, h * 0.5, (0, 0, -h * 0.5)), _cyl(r, h * 0.5, (0, 0, h * 0.5))]


def bowl(rng: np.random.Generator) -> Parts:
    r, h, t = rng.uniform(0.06, 0.09), rng.uniform(0.02, 0.03), 0.006
    parts = [_cyl(r * 0.6, 0.005, (0, 0, -h + 0.005))]
    for k in range(4):  # four rim walls around a square-ish opening
        a = k * np.pi / 2
        parts.append(_box(t, r * 0.75, h, (r * np.cos(a) * 0.85, r * np.sin(a) * 0.85, 0), _yaw_quat(a)))
    return parts


def cereal_box(rng: np.random.Generator) -> Parts:
    return [_box(rng.uniform(0.03, 0.09), rng.uniform(0.015, 0.035), rng.uniform(0.05, 0.11))]


def ball(rng: np.random.Generator) -> Parts:
    if rng.random() < 0.5:
        return [ConvexPart("sphere", (rng.uniform(0.028, 0.06), 0, 0))]
    a = rng.uniform(0.03, 0.055)
    return [ConvexPart("ellipsoid", (a, a * rng.uniform(0.7, 1.0), a * rng.uniform(0.7, 1.0)))]


def flashlight(rng: np.random.Generator) -> Parts:
    r, half = rng.uniform(0.012, 0.018), rng.uniform(0.05, 0.09)
    head_r, head_h = r * rng.uniform(1.3, 1.7), rng.uniform(0.015, 0.025)
    return [_cyl(r, half, quat=_X_UP), _cyl(head_r, head_h, (half + head_h, 0, 0), _X_UP)]


def hammer(rng: np.random.Generator) -> Parts:
    half, t = rng.uniform(0.06, 0.1), rng.uniform(0.008, 0.012)
    head = (rng.uniform(0.012, 0.018), rng.uniform(0.035, 0.05), rng.uniform(0.012, 0.018))
    return [_box(half, t * 1.3, t), _box(*head, (half + head[0], 0, 0))]


def pistol(rng: np.random.Generator) -> Parts:
    barrel, grip = rng.uniform(0.05, 0.08), rng.uniform(0.04, 0.06)
    tilt = rng.uniform(0.2, 0.4)
    return [
        _box(barrel, 0.012, 0.016),
        _box(0.016, 0.012, grip, (-barrel + 0.02 + grip * np.sin(tilt), 0, -grip), _pitch_quat(tilt)),
    ]


def l_block(rng: np.random.Generator) -> Parts:
    arm, t, d = rng.uniform(0.04, 0.07), rng.uniform(0.012, 0.02), rng.uniform(0.015, 0.025)
    return [_box(arm, t, d), _box(t, arm, d, (arm - t, arm - t, 0))]


def u_block(rng: np.random.Generator) -> Parts:
    arm, t, d = rng.uniform(0.03, 0.06), rng.uniform(0.012, 0.018), rng.uniform(0.015, 0.025)
    return [_box(arm, t, d), _box(t, arm, d, (arm - t, arm - t, 0)), _box(t, arm, d, (-arm + t, arm - t, 0))]


def t_block(rng: np.random.Generator) -> Parts:
    arm, t, d = rng.uniform(0.035, 0.06), rng.uniform(0.012, 0.018), rng.uniform(0.015, 0.025)
    return [_box(arm, t, d), _box(t, arm, d, (0, -arm + t, 0))]


def plate(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.07, 0.11), rng.uniform(0.006, 0.01)
    return [_cyl(r * 0.65, h * 0.6, (0, 0, -h * 0.4)), _cyl(r, h * 0.4, (0, 0, h * 0.6))]


def saucepan(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.045, 0.06), rng.uniform(0.025, 0.04)
    handle = rng.uniform(0.035, 0.06)
    return [_cyl(r, h), _box(handle, 0.01, 0.006, (r + handle - 0.005, 0, h - 0.006))]


def egg(rng: np.random.Generator) -> Parts:
    a = rng.uniform(0.022, 0.032)
    return [ConvexPart("ellipsoid", (a, a, a * rng.uniform(1.25, 1.5)))]


def wine_glass(rng: np.random.Generator) -> Parts:
    foot_r, stem_h = rng.uniform(0.03, 0.04), rng.uniform(0.025, 0.04)
    bowl_r, bowl_h = rng.uniform(0.03, 0.042), rng.uniform(0.03, 0.045)
    return [
        _cyl(foot_r, 0.003, (0, 0, 0.003)),
        _cyl(0.005, stem_h, (0, 0, 0.006 + stem_h)),
        ConvexPart("ellipsoid", (bowl_r, bowl_r, bowl_h), (0, 0, 0.006 + 2 * stem_h + bowl_h * 0.8)),
    ]


def spray_bottle(rng: np.random.Generator) -> Parts:
    r, h = rng.uniform(0.025, 0.035), rng.uniform(0.05, 0.08)
    head = rng.uniform(0.02, 0.03)
    return [
        _cyl(r, h),
        _cyl(r * 0.45, 0.015, (0, 0, h + 0.015)),
        _box(head, 0.012, 0.015, (head * 0.5, 0, h + 0.045)),
        _box(0.006, 0.008, 0.02, (head * 0.3, 0, h + 0.015)),
    ]


def banana(rng: np.random.Generator) -> Parts:
    radius, bend, thick = rng.uniform(0.08, 0.12), rng.uniform(0.6, 1.0), rng.uniform(0.014, 0.02)
    angles = np.linspace(-bend / 2, bend / 2, 4)
    seg = radius * bend / 8  # half length of each of the 4 segments
    parts = []
    for a in angles:  # capsules along an arc in the horizontal plane, each tangent to it
        pos = (radius * np.sin(a), radius * (1 - np.cos(a)), 0)
        yaw = _yaw_quat(a)
        q_tangent = quat.multiply_components(yaw, _X_UP)
        parts.append(ConvexPart("capsule", (thick, seg), pos, q_tangent))
    return parts


def remote(rng: np.random.Generator) -> Parts:
    return [_box(rng.uniform(0.07, 0.1), rng.uniform(0.018, 0.026), rng.uniform(0.008, 0.013))]


@dataclass(frozen=True)
class Category:
    """A generator of one kind of object.

    :param name: category name.
    :param make: draws the parts of one instance.
    :param density: kg/m^3 of the solid parts (hollow household objects are light).
    :param held_out: belongs to the unseen-category split.
    """

    name: str
    make: Callable[[np.random.Generator], Parts]
    density: float = 500.0
    held_out: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category("bottle", bottle, 300.0),
    Category("can", can, 400.0),
    Category("mug", mug, 400.0),
    Category("cup", cup, 300.0),
    Category("bowl", bowl, 500.0),
    Category("cereal_box", cereal_box, 150.0),
    Category("ball", ball, 200.0),
    Category("flashlight", flashlight, 500.0),
    Category("hammer", hammer, 600.0),
    Category("pistol", pistol, 500.0),
    Category("l_block", l_block, 500.0),
    Category("u_block", u_block, 500.0),
    Category("plate", plate, 600.0),
    Category("saucepan", saucepan, 400.0),
    Category("egg", egg, 500.0),
    Category("wine_glass", wine_glass, 500.0, held_out=True),
    Category("spray_bottle", spray_bottle, 300.0, held_out=True),
    Category("banana", banana, 500.0, held_out=True),
    Category("remote", remote, 500.0, held_out=True),
    Category("t_block", t_block, 500.0, held_out=True),
)
