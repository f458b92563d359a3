"""A handful of primitive objects, enough to exercise the simulation before a full object set exists."""

from __future__ import annotations

from envs.objects.spec import ConvexPart, ObjectSpec

_HALF_PI_ABOUT_X = (0.7071067811865476, 0.7071067811865476, 0.0, 0.0)


def cube(edge: float = 0.06, name: str = "cube") -> ObjectSpec:
    """A cube of the given edge length (metres)."""
    h = edge / 2
    return ObjectSpec(name, (ConvexPart("box", (h, h, h)),), category="box")


def primitive_objects() -> list[ObjectSpec]:
    """Box, standing cylinder, sphere and lying capsule, each sized to fit the hand (5-8 cm)."""
    return [
        cube(),
        ObjectSpec("box_long", (ConvexPart("box", (0.025, 0.04, 0.03)),), category="box"),
        ObjectSpec("cylinder", (ConvexPart("cylinder", (0.03, 0.04)),), category="cylinder"),
        ObjectSpec("sphere", (ConvexPart("sphere", (0.035, 0, 0)),), category="sphere"),
        ObjectSpec("capsule", (ConvexPart("capsule", (0.025, 0.03), quat=_HALF_PI_ABOUT_X),), category="capsule"),
    ]
