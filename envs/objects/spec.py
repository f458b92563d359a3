"""Object description shared by the scene builder, the object sets and the importers.

An object is a rigid union of convex parts expressed in the object frame, whose origin is the centre of the
object's axis-aligned bounding box (the convention DexGraspNet's normalised meshes use). Parts are either
MuJoCo primitives (exact, cheapest to collide) or convex hulls given by their vertices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The evaluation splits every object belongs to: training objects, unseen objects of training categories,
#: and objects of unseen categories.
SPLITS = ("train", "unseen_obj", "unseen_cat")
PRIMITIVE_KINDS = ("box", "cylinder", "capsule", "sphere", "ellipsoid")
PART_KINDS = PRIMITIVE_KINDS + ("hull",)


@dataclass(frozen=True)
class ConvexPart:
    """One convex piece of an object.

    :param kind: one of ``box``, ``cylinder``, ``capsule``, ``sphere``, ``ellipsoid`` or ``hull``.
    :param size: MuJoCo geom ``size`` for primitives (half extents / radius, half length), padded to 3 values;
        unused for hulls.
    :param pos: part origin in the object frame, metres.
    :param quat: part orientation in the object frame, (w, x, y, z).
    :param vertices: (V, 3) hull vertices in the part frame, metres; only for ``hull``.
    """

    kind: str
    size: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    vertices: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", tuple(float(v) for v in (*self.size, 0.0, 0.0, 0.0)[:3]))
        if self.kind not in PART_KINDS:
            raise ValueError(f"part kind {self.kind!r} is not one of {PART_KINDS}")
        if self.kind == "hull":
            if self.vertices is None or np.asarray(self.vertices).ndim != 2 or np.asarray(self.vertices).shape[1] != 3:
                raise ValueError("a hull part needs vertices of shape (V, 3)")
            if not np.all(np.isfinite(self.vertices)):
                raise ValueError("hull vertices must be finite")
        elif min(self.size[: _size_dims(self.kind)]) <= 0:
            raise ValueError(f"{self.kind} part needs positive size, got {self.size}")
        if abs(np.linalg.norm(self.quat) - 1.0) > 1e-6:
            raise ValueError(f"part quat {self.quat} is not a unit quaternion")


def _size_dims(kind: str) -> int:
    return {"box": 3, "ellipsoid": 3, "cylinder": 2, "capsule": 2, "sphere": 1}[kind]


@dataclass(frozen=True)
class ObjectSpec:
    """A graspable object.

    :param name: unique id inside its object set.
    :param parts: the convex parts, in the object frame.
    :param category: semantic category (``mug``, ``bottle`` ...).
    :param split: ``train``, ``unseen_obj`` or ``unseen_cat``.
    :param density: kg/m^3, the reference's 500 by default.
    """

    name: str
    parts: tuple[ConvexPart, ...]
    category: str = "primitive"
    split: str = "train"
    density: float = 500.0

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"object {self.name!r} has no parts")
        if self.density <= 0:
            raise ValueError(f"object {self.name!r}: density must be positive")

    @property
    def num_hulls(self) -> int:
        return sum(p.kind == "hull" for p in self.parts)

    @property
    def num_primitives(self) -> int:
        return len(self.parts) - self.num_hulls


def quat_to_mat(quat: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    """Rotation matrix of a (w, x, y, z) unit quaternion."""
    w, x, y, z = np.asarray(quat, dtype=float)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def part_support(part: ConvexPart, direction: np.ndarray) -> float:
    """Largest extent of ``part`` along the unit ``direction`` (object frame): max over the part of <p, d>."""
    d_local = quat_to_mat(part.quat).T @ np.asarray(direction, dtype=float)
    sx, sy, sz = part.size
    if part.kind == "box":
        extent = abs(d_local[0]) * sx + abs(d_local[1]) * sy + abs(d_local[2]) * sz
    elif part.kind == "sphere":
        extent = sx
    elif part.kind == "ellipsoid":
        extent = float(np.linalg.norm(d_local * np.array([sx, sy, sz])))
    elif part.kind == "capsule":
        extent = sx + sy * abs(d_local[2])
    elif part.kind == "cylinder":
        extent = sx * float(np.hypot(d_local[0], d_local[1])) + sy * abs(d_local[2])
    else:
        extent = float(np.max(np.asarray(part.vertices) @ d_local))
    return float(np.dot(part.pos, direction)) + extent


def object_support(obj: ObjectSpec, direction: np.ndarray) -> float:
    """Largest extent of the object along ``direction`` in its own frame."""
    return max(part_support(p, direction) for p in obj.parts)


def object_bounds(obj: ObjectSpec) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned bounding box (low, high) of the object in its own frame."""
    eye = np.eye(3)
    high = np.array([object_support(obj, e) for e in eye])
    low = -np.array([object_support(obj, -e) for e in eye])
    return low, high
