"""The embedded object set: generated from a seed, so every machine builds the same objects without downloads.

Splits mirror DexGraspNet's: ``train``; ``unseen_obj`` (new instances of training categories); ``unseen_cat``
(categories never trained on). Instance ``i`` of a category is drawn from its own generator keyed by
(seed, category, i), so a preset's objects do not change when categories are added.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace

import numpy as np

from envs.objects.categories import CATEGORIES, Category
from envs.objects.spec import SPLITS, ConvexPart, ObjectSpec, object_bounds

EMBEDDED_SEED = 2025
MIN_SIZE, MAX_SIZE = 0.05, 0.25  # longest side, metres


@dataclass(frozen=True)
class Preset:
    """How many instances each split gets.

    :param name: preset name.
    :param train: instances per seen category in ``train``.
    :param unseen_obj: instances per seen category in ``unseen_obj``.
    :param unseen_cat: instances per held-out category.
    """

    name: str
    train: int
    unseen_obj: int
    unseen_cat: int


PRESETS: dict[str, Preset] = {
    "small": Preset("small", train=2, unseen_obj=1, unseen_cat=2),  # tests: 55 objects
    "default": Preset("default", train=8, unseen_obj=3, unseen_cat=6),  # CPU demo: 195 objects
    "large": Preset("large", train=200, unseen_obj=20, unseen_cat=40),  # DexGraspNet scale: 3,500 objects
}

#: set name of each preset in the data directory and on the command line
SET_OF_PRESET = {"small": "embedded-small", "default": "embedded", "large": "embedded-large"}
PRESET_OF_SET = {v: k for k, v in SET_OF_PRESET.items()}


def make_instance(category: Category, index: int, seed: int = EMBEDDED_SEED) -> list[ConvexPart]:
    """Parts of instance ``index`` of ``category``, centred on their bounding box."""
    rng = np.random.default_rng([seed, zlib.crc32(category.name.encode()), index])
    parts = category.make(rng)
    probe = ObjectSpec("probe", tuple(parts))
    low, high = object_bounds(probe)
    centre = 0.5 * (low + high)
    return [replace(p, pos=tuple(float(v) for v in np.asarray(p.pos) - centre)) for p in parts]


def embedded_objects(preset: str = "default", seed: int = EMBEDDED_SEED) -> list[ObjectSpec]:
    """Every object of a preset, grouped by split then category."""
    if preset not in PRESETS:
        raise ValueError(f"unknown object preset {preset!r}; known: {sorted(PRESETS)}")
    counts = PRESETS[preset]
    objects: list[ObjectSpec] = []
    for split in SPLITS:
        for category in CATEGORIES:
            if category.held_out != (split == "unseen_cat"):
                continue
            first = counts.train if split == "unseen_obj" else 0  # unseen instances come after the training ones
            number = getattr(counts, split)
            for index in range(first, first + number):
                parts = make_instance(category, index, seed)
                obj = ObjectSpec(f"{category.name}-{index:03d}", tuple(parts), category.name, split, category.density)
                _check_size(obj)
                objects.append(obj)
    return objects


def _check_size(obj: ObjectSpec) -> None:
    low, high = object_bounds(obj)
    longest = float(np.max(high - low))
    if not MIN_SIZE <= longest <= MAX_SIZE:
        raise RuntimeError(f"generated object {obj.name} is {longest:.3f} m long, outside [{MIN_SIZE}, {MAX_SIZE}]")
