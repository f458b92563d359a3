"""Object sets by name: the embedded presets and whatever was imported, as built in the data directory.

Loading never builds: a set that is missing, incomplete or damaged raises :class:`ObjectSetNotBuilt`, whose
one-line message names the command to run. Only ``python -m resdex_sb3.objects build``/``import`` and the
pipeline's objects stage build (through :func:`envs.objects.build.build_object_set`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from envs.config import SceneConfig
from envs.objects.embedded import PRESET_OF_SET, embedded_objects
from envs.objects.serialize import object_to_dict, proposal_to_dict
from envs.objects.spec import SPLITS, ObjectSpec
from envs.objects.store import ObjectSetNotBuilt, ObjectStore
from envs.proposals import GraspProposal

#: the fewest hull slots a scene gets when some of its objects are made of hulls (imported sets)
IMPORTED_HULL_SLOTS = 8

__all__ = ["DEFAULT_SET", "SPLITS", "ObjectSet", "ObjectSetNotBuilt", "available_sets", "describe_object_set",
           "load_object_set", "not_built_message"]  # fmt: skip

DEFAULT_SET = "embedded"


@dataclass
class ObjectSet:
    """A named list of objects with their surface points and validated grasp proposals.

    :param name: set name (``embedded``, ``embedded-small``, ``embedded-large`` or an imported set).
    :param objects: every object, all splits.
    :param points: object name -> (4096, 3) surface points in the object frame.
    :param proposals: object name -> validated grasp proposals, best first.
    :param report: the proposal sampling report (share validated, candidates tried ...).
    """

    name: str
    objects: list[ObjectSpec]
    points: dict[str, np.ndarray] = field(default_factory=dict)
    proposals: dict[str, list[GraspProposal]] = field(default_factory=dict)
    report: dict = field(default_factory=dict)

    def split(self, split: str) -> list[ObjectSpec]:
        """Objects of one split (``train``, ``unseen_obj``, ``unseen_cat``)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; known: {SPLITS}")
        return [o for o in self.objects if o.split == split]

    def by_name(self, name: str) -> ObjectSpec:
        for obj in self.objects:
            if obj.name == name:
                return obj
        raise KeyError(f"object {name!r} is not in set {self.name!r}")

    @property
    def scene_config(self) -> SceneConfig:
        """Scene settings that fit every object of the set (hull slots only when some object has hulls)."""
        return scene_config_for(self.objects)

    @cached_property
    def checksum(self) -> str:
        """sha256 (hex) of the set's content: every object's description and surface points, and its grasp
        proposals, in a canonical order.

        Two data directories give the same checksum exactly when runs on them see the same objects, clouds and
        start poses, whatever the build's timings, file encodings or object order. Computed once per loaded
        set (a fraction of a second for thousands of objects)."""
        digest = hashlib.sha256()
        for obj in sorted(self.objects, key=lambda o: o.name):
            digest.update(json.dumps(object_to_dict(obj), sort_keys=True).encode())
            points = self.points.get(obj.name)
            digest.update(b"no points" if points is None else np.ascontiguousarray(points, dtype="<f4").tobytes())
            proposals = [proposal_to_dict(p) for p in self.proposals.get(obj.name, [])]
            digest.update(json.dumps(proposals, sort_keys=True).encode())
        return digest.hexdigest()


def load_object_set(name: str = DEFAULT_SET, data_dir: str | os.PathLike[str] | None = None) -> ObjectSet:
    """Load set ``name`` from the data directory, checksums verified; never builds anything.

    Raises :class:`ObjectSetNotBuilt` (a ``ValueError``) naming the command to run when the set is missing,
    incomplete or damaged.

    :param name: an embedded preset's set name or an imported set.
    :param data_dir: the data directory (default: ``$RESDEX_DATA``, else ``data/`` in the checkout).
    """
    store = ObjectStore(data_dir)
    message = not_built_message(store, name)
    if message:
        raise ObjectSetNotBuilt(message)
    objects = store.objects(name)
    proposals, report = store.read_proposals(name)
    return ObjectSet(name, objects, store.points(name), proposals, report)


def not_built_message(store: ObjectStore, name: str) -> str | None:
    """Why set ``name`` cannot be loaded from ``store`` (one line naming the command to run), or ``None`` when
    the manifest lists it as complete. File checksums are checked on load, not here.

    :param store: the data directory.
    :param name: the set's name.
    """
    sets = store.set_names()
    if name in sets and store.set_info(name).get("complete"):
        return None
    command = store.rebuild_command(name)
    if name in PRESET_OF_SET:
        state = "only partly built" if name in sets else "not built"
        return f"object set {name!r} is {state} in {store.root}; build it with: {command}"
    if name in sets:
        return (f"object set {name!r} in {store.root} is incomplete (its import was interrupted or is still running); "
                f"finish it with: {command}")
    known = ", ".join(sorted(set(sets) | set(PRESET_OF_SET)))
    return f"object set {name!r} does not exist in {store.root}; known sets: {known}"


def describe_object_set(name: str, data_dir: str | os.PathLike[str] | None = None) -> tuple[ObjectSet, bool]:
    """The set for listing and showing, and whether it is built; an embedded preset that is not built yet comes
    back as its objects alone (no points, no proposals), without building anything.

    :param name: an embedded preset's set name or an imported set.
    :param data_dir: the data directory.
    """
    store = ObjectStore(data_dir)
    if not_built_message(store, name) and name in PRESET_OF_SET:
        return ObjectSet(name, embedded_objects(PRESET_OF_SET[name])), False
    return load_object_set(name, data_dir), True


def available_sets(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Embedded preset names plus every set in the data directory."""
    return sorted(set(PRESET_OF_SET) | set(ObjectStore(data_dir).set_names()))


def scene_config_for(objects: Sequence[ObjectSpec]) -> SceneConfig:
    """Scene settings that fit every object (hull slots only when some object has hulls)."""
    hulls = max((o.num_hulls for o in objects), default=0)
    return SceneConfig(hull_slots=max(hulls, IMPORTED_HULL_SLOTS) if hulls else 0)
