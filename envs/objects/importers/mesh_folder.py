"""Import a folder of user meshes (.obj / .stl / .ply) as objects, with an optional manifest.

The manifest (``manifest.yaml``, ``manifest.yml`` or ``manifest.json`` in the folder) lists per-file settings::

    objects:
      - {file: mugs/blue.obj, name: blue_mug, category: mug, split: unseen_obj, scale: 0.001, density: 400}

Every field but ``file`` is optional. Files the manifest does not mention still import, with defaults: the
category is the name of the sub-folder holding the file, or else the leading letters of the file name
(``bottle_03.stl`` -> ``bottle``), or ``imported``; the split is ``train``. A bad mesh is skipped and reported;
a bad manifest stops the import, since every object after it would silently get the wrong settings.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from envs.objects.importers.decompose import convex_parts
from envs.objects.importers.mesh_checks import MESH_EXTENSIONS, SIDE_RANGE, PreparedMesh, load_object_mesh
from envs.objects.importers.result import ImportResult
from envs.objects.spec import SPLITS, ConvexPart, ObjectSpec

MANIFEST_NAMES = ("manifest.yaml", "manifest.yml", "manifest.json")
MANIFEST_FIELDS = ("file", "name", "category", "split", "scale", "density")
MANIFEST_TOP_KEYS = ("objects",)
DEFAULT_DENSITY = 500.0
DEFAULT_CATEGORY = "imported"


@dataclass(frozen=True)
class ManifestEntry:
    """One file's settings from the manifest; ``None`` means "use the default".

    :param file: path relative to the imported folder, with forward slashes.
    :param name: object name (the id becomes ``<set_name>/<name>``).
    :param category: semantic category.
    :param split: ``train``, ``unseen_obj`` or ``unseen_cat``.
    :param scale: factor from file units to metres; replaces the folder-wide ``scale`` for this file.
    :param density: kg/m^3.
    """

    file: str
    name: str | None = None
    category: str | None = None
    split: str | None = None
    scale: float | None = None
    density: float | None = None


@dataclass
class MeshFolderResult(ImportResult):
    """An ``ImportResult`` that also records the factor applied to each object's file coordinates.

    :param scales: object name -> total factor from file units to metres (the user's scale times any rescale
        into the size range), so a user can see which objects were resized.
    :param rescaled: object name -> (longest side after the user's scale, longest side imported), metres, for
        every object the size check rescaled.
    """

    scales: dict[str, float] = field(default_factory=dict)
    rescaled: dict[str, tuple[float, float]] = field(default_factory=dict)


def import_mesh_folder(
    directory: Path,
    set_name: str,
    max_parts: int = 8,
    cache_dir: Path | None = None,
    scale: float = 1.0,
    unseen_fraction: float = 0.0,
    progress: Callable[[str, int, int], None] | None = None,
    log: Callable[[str], None] | None = None,
) -> MeshFolderResult:
    """Import every mesh under ``directory`` (recursively, in sorted order) as an object of hull parts.

    :param directory: folder holding the mesh files and, optionally, a manifest.
    :param set_name: prefix of the object ids (``<set_name>/<stem>``).
    :param max_parts: most convex parts per object; use the scene's ``hull_slots``.
    :param cache_dir: CoACD cache folder; ``None`` decomposes every time.
    :param scale: factor from file units to metres for files the manifest gives no scale.
    :param unseen_fraction: fraction of the objects whose split the manifest leaves open that go to
        ``unseen_obj`` instead of ``train``, chosen by a stable hash of the object id (same files, same split).
    :param progress: called as ``progress("meshes", done, total)`` around every file (CoACD can take seconds
        to minutes per mesh).
    :param log: called with one line for every mesh the size check rescales.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"mesh folder {directory} does not exist")
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    if not 0.0 <= unseen_fraction <= 1.0:
        raise ValueError(f"unseen_fraction must be in [0, 1], got {unseen_fraction}")
    manifest = read_manifest(directory)
    files = mesh_files(directory)
    ids = _unique_ids(set_name, [_base_name(f, manifest.get(f)) for f in files])
    result = MeshFolderResult()
    if progress and files:
        progress("meshes", 0, len(files))
    for done, (relative, object_id) in enumerate(zip(files, ids), start=1):
        entry = manifest.get(relative) or ManifestEntry(file=relative)
        path = directory / relative
        try:
            obj, prepared = _import_one(path, object_id, entry, max_parts, cache_dir, scale, unseen_fraction)
        except Exception as err:  # one broken file must not stop a folder of thousands
            reason = str(err) if str(path) in str(err) else f"{path}: {type(err).__name__}: {err}"
            result.skipped.append((str(path), reason))
        else:
            result.objects.append(obj)
            result.proposals[obj.name] = []
            result.scales[obj.name] = prepared.scale
            if prepared.rescaled:
                after = float(np.max(prepared.mesh.extents))
                before = after * prepared.user_scale / prepared.scale
                result.rescaled[obj.name] = (before, after)
                if log:
                    log(f"{path}: {before * 100:.3g} cm mesh rescaled to {after * 100:.3g} cm (longest side; objects "
                        f"are {SIDE_RANGE[0] * 100:g}-{SIDE_RANGE[1] * 100:g} cm, pass --scale to choose)")  # fmt: skip
        if progress:
            progress("meshes", done, len(files))
    return result


def mesh_files(directory: Path) -> list[str]:
    """Paths (relative, forward slashes, sorted) of every mesh file under ``directory``.

    :param directory: the folder to search recursively.
    """
    found = [p for p in Path(directory).rglob("*") if p.is_file() and p.suffix.lower() in MESH_EXTENSIONS]
    return sorted(p.relative_to(directory).as_posix() for p in found)


def read_manifest(directory: Path) -> dict[str, ManifestEntry]:
    """The folder's manifest as file -> entry; empty when the folder has none.

    Raises ``ValueError`` naming the manifest for an unknown key or field, a bad value, a duplicate entry or an
    entry whose file does not exist.

    :param directory: the imported folder.
    """
    present = [directory / n for n in MANIFEST_NAMES if (directory / n).is_file()]
    if not present:
        return {}
    if len(present) > 1:
        raise ValueError(f"{directory}: found several manifests {[p.name for p in present]}; keep one")
    path = present[0]
    raw = _parse_manifest(path)
    entries: dict[str, ManifestEntry] = {}
    for index, item in enumerate(_manifest_items(raw, path)):
        entry = _manifest_entry(item, path, index)
        if entry.file in entries:
            raise ValueError(f"{path}: file {entry.file!r} is listed twice")
        target = directory / entry.file
        if ".." in Path(entry.file).parts or Path(entry.file).is_absolute():
            raise ValueError(f"{path}: entry {index} file {entry.file!r} must lie inside {directory}")
        if not target.is_file():
            raise ValueError(f"{path}: entry {index} names a missing file {entry.file!r} (looked for {target})")
        if target.suffix.lower() not in MESH_EXTENSIONS:
            raise ValueError(f"{path}: entry {index} file {entry.file!r} is not one of {MESH_EXTENSIONS}")
        entries[entry.file] = entry
    return entries


def default_category(relative: str) -> str:
    """Category of a file the manifest does not categorise: its folder's name, else its name's leading letters.

    :param relative: the file's path relative to the imported folder, forward slashes.
    """
    parts = relative.split("/")
    if len(parts) > 1:
        return parts[-2].lower()
    match = re.match(r"[A-Za-z]+", Path(relative).stem)
    return match.group(0).lower() if match else DEFAULT_CATEGORY


def _import_one(
    path: Path,
    object_id: str,
    entry: ManifestEntry,
    max_parts: int,
    cache_dir: Path | None,
    scale: float,
    unseen_fraction: float,
) -> tuple[ObjectSpec, PreparedMesh]:
    prepared = load_object_mesh(path, entry.scale if entry.scale is not None else scale)
    vertices = _recentre(convex_parts(prepared.mesh, max_parts, cache_dir))
    parts = tuple(ConvexPart("hull", vertices=v) for v in vertices)
    obj = ObjectSpec(
        name=object_id,
        parts=parts,
        category=entry.category or default_category(entry.file),
        split=entry.split or _default_split(object_id, unseen_fraction),
        density=entry.density if entry.density is not None else DEFAULT_DENSITY,
    )
    return obj, prepared


def _recentre(parts: list[np.ndarray]) -> list[np.ndarray]:
    # CoACD pieces approximate the mesh, so their union's box can sit slightly off the mesh's box; the object
    # frame is defined by the parts actually simulated.
    stacked = np.concatenate(parts)
    centre = 0.5 * (stacked.min(axis=0) + stacked.max(axis=0))
    return [p - centre for p in parts]


def _default_split(object_id: str, unseen_fraction: float) -> str:
    # A hash of the id (not a random draw) keeps each object's split the same across imports and machines.
    draw = int.from_bytes(hashlib.sha256(object_id.encode()).digest()[:8], "big") / 2.0**64
    return "unseen_obj" if draw < unseen_fraction else "train"


def _base_name(relative: str, entry: ManifestEntry | None) -> str:
    if entry is not None and entry.name:
        return entry.name
    return Path(relative).stem


def _unique_ids(set_name: str, names: list[str]) -> list[str]:
    # Ids are assigned over every file (even ones that fail later), so fixing one file never renames another.
    taken: set[str] = set()
    ids = []
    for name in names:
        candidate, k = f"{set_name}/{name}", 2
        while candidate in taken:
            candidate, k = f"{set_name}/{name}_{k}", k + 1
        taken.add(candidate)
        ids.append(candidate)
    return ids


def _parse_manifest(path: Path) -> object:
    try:
        text = path.read_text()
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError) as err:  # json.JSONDecodeError is a ValueError
        raise ValueError(f"{path}: cannot parse manifest ({err})") from err


def _manifest_items(raw: object, path: Path) -> list[object]:
    if raw is None:
        return []
    if isinstance(raw, list):  # a bare list of entries is accepted as shorthand for {objects: [...]}
        return raw
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a manifest must be a mapping with key 'objects' (or a list of entries)")
    unknown = sorted(str(k) for k in raw if k not in MANIFEST_TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {unknown}; allowed: {list(MANIFEST_TOP_KEYS)}")
    items = raw.get("objects") or []
    if not isinstance(items, list):
        raise ValueError(f"{path}: 'objects' must be a list of entries")
    return items


def _manifest_entry(item: object, path: Path, index: int) -> ManifestEntry:
    if not isinstance(item, dict):
        raise ValueError(f"{path}: entry {index} must be a mapping with at least 'file', got {item!r}")
    unknown = sorted(str(k) for k in item if k not in MANIFEST_FIELDS)
    if unknown:
        raise ValueError(f"{path}: entry {index} has unknown field(s) {unknown}; allowed: {list(MANIFEST_FIELDS)}")
    if not isinstance(item.get("file"), str) or not item["file"]:
        raise ValueError(f"{path}: entry {index} needs a 'file' (a path relative to the folder)")
    split = item.get("split")
    if split is not None and split not in SPLITS:
        raise ValueError(f"{path}: entry {index} field 'split' is {split!r}, not one of {SPLITS}")
    for text_field in ("name", "category"):
        if item.get(text_field) is not None and not isinstance(item[text_field], str):
            raise ValueError(f"{path}: entry {index} field {text_field!r} must be a string")
    numbers = {k: _positive_number(item.get(k), path, index, k) for k in ("scale", "density")}
    return ManifestEntry(
        file=Path(item["file"]).as_posix(),
        name=item.get("name"),
        category=item["category"].lower() if item.get("category") else None,
        split=split,
        **numbers,
    )


def _positive_number(value: object, path: Path, index: int, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{path}: entry {index} field {name!r} must be a positive number, got {value!r}")
    return float(value)
