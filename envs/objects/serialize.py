"""Plain-data (JSON-ready) forms of objects and grasp proposals, with errors that name the offending field."""

from __future__ import annotations

from typing import Any

import numpy as np

from envs.objects.spec import ConvexPart, ObjectSpec
from envs.proposals import GraspProposal

_OBJECT_FIELDS = {"name", "category", "split", "density", "parts"}
_PART_FIELDS = {"kind", "size", "pos", "quat", "vertices"}
_PROPOSAL_FIELDS = {"hand_point", "palm_quat", "hand_qpos", "lift"}


def object_to_dict(obj: ObjectSpec) -> dict[str, Any]:
    """JSON-ready description of ``obj``."""
    parts = []
    for p in obj.parts:
        entry: dict[str, Any] = {"kind": p.kind, "size": list(p.size), "pos": list(p.pos), "quat": list(p.quat)}
        if p.vertices is not None:
            entry["vertices"] = np.asarray(p.vertices, dtype=float).round(7).tolist()
        parts.append(entry)
    return {"name": obj.name, "category": obj.category, "split": obj.split, "density": obj.density, "parts": parts}


def object_from_dict(data: dict[str, Any], source: str) -> ObjectSpec:
    """Inverse of :func:`object_to_dict`; ``source`` names the file in error messages."""
    _check_fields(data, _OBJECT_FIELDS, {"name", "parts"}, source)
    try:
        parts = []
        for i, p in enumerate(data["parts"]):
            _check_fields(p, _PART_FIELDS, {"kind"}, f"{source} parts[{i}]")
            vertices = None if p.get("vertices") is None else np.asarray(p["vertices"], dtype=float)
            parts.append(ConvexPart(p["kind"], tuple(p.get("size", (0, 0, 0))), tuple(p.get("pos", (0, 0, 0))),
                                    tuple(p.get("quat", (1, 0, 0, 0))), vertices))  # fmt: skip
        return ObjectSpec(data["name"], tuple(parts), data.get("category", "unknown"), data.get("split", "train"),
                          float(data.get("density", 500.0)))  # fmt: skip
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: invalid object description: {err}") from err


def proposal_to_dict(p: GraspProposal, lift: float | None = None) -> dict[str, Any]:
    """JSON-ready form of a proposal (with the lift it achieved when validated)."""
    out: dict[str, Any] = {
        "hand_point": np.asarray(p.hand_point, dtype=float).round(6).tolist(),
        "palm_quat": np.asarray(p.palm_quat, dtype=float).round(6).tolist(),
        "hand_qpos": np.asarray(p.hand_qpos, dtype=float).round(5).tolist(),
    }
    if lift is not None:
        out["lift"] = round(float(lift), 4)
    return out


def proposal_from_dict(data: dict[str, Any], source: str) -> GraspProposal:
    """Inverse of :func:`proposal_to_dict`."""
    _check_fields(data, _PROPOSAL_FIELDS, {"hand_point", "palm_quat", "hand_qpos"}, source)
    try:
        quat = np.asarray(data["palm_quat"], dtype=float)
        return GraspProposal(np.asarray(data["hand_point"], dtype=float), quat / np.linalg.norm(quat),
                             np.asarray(data["hand_qpos"], dtype=float))  # fmt: skip
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: invalid grasp proposal: {err}") from err


def _check_fields(data: Any, allowed: set[str], required: set[str], source: str) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{source}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")
    missing = sorted(required - set(data))
    if missing:
        raise ValueError(f"{source}: missing field(s) {missing}")
