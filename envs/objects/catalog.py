"""Object sets by name: the embedded presets (built on first use) and whatever was imported into the data directory."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from envs.config import SceneConfig
from envs.objects.build import build_embedded, scene_config_for
from envs.objects.embedded import PRESET_OF_SET, embedded_objects
from envs.objects.spec import ObjectSpec
from envs.objects.store import ObjectStore
from envs.proposals import GraspProposal

SPLITS = ("train", "unseen_obj", "unseen_cat")
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


def load_object_set(
    name: str = DEFAULT_SET,
    data_dir: str | os.PathLike[str] | None = None,
    build_missing: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> ObjectSet:
    """Load set ``name`` from the data directory; an embedded preset is built there first if it is incomplete."""
    store = ObjectStore(data_dir)
    if name in PRESET_OF_SET:
        complete = name in store.set_names() and store.set_info(name).get("complete", False)
        if not complete:
            if not build_missing:
                return ObjectSet(name, embedded_objects(PRESET_OF_SET[name]))
            build_embedded(store, PRESET_OF_SET[name], progress=progress)
    objects = store.objects(name)
    proposals, report = store.read_proposals(name)
    return ObjectSet(name, objects, store.points(name), proposals, report)


def available_sets(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Embedded preset names plus every set in the data directory."""
    return sorted(set(PRESET_OF_SET) | set(ObjectStore(data_dir).set_names()))
