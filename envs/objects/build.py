"""Building object sets into the data directory: surface points, then sim-validated grasp proposals.

Only :func:`build_object_set` (``python -m resdex_sb3.objects build`` and the pipeline's objects stage) and
:func:`import_object_set` (``objects import``) build; loading a set never does.

Both steps resume: objects already in the manifest are skipped, and proposals are sampled in chunks whose
results are saved as each chunk finishes. Every build first verifies the files the manifest lists and rebuilds
those that loading would refuse (missing, or not matching their checksum).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from envs.config import SceneConfig
from envs.objects.catalog import scene_config_for
from envs.objects.embedded import EMBEDDED_SEED, PRESET_OF_SET, SET_OF_PRESET, embedded_objects
from envs.objects.grasp_sampler import SamplerConfig, sample_proposals
from envs.objects.importers.result import ImportResult
from envs.objects.spec import ObjectSpec
from envs.objects.store import ObjectSetNotBuilt, ObjectStore
from envs.objects.surface import sample_surface

Progress = Callable[[str, int, int], None]  # (stage, done, total)
Clock = Callable[[], float]  # seconds, monotonic
Log = Callable[[str], None]  # one line for the user
PROPOSAL_CHUNK = 64  # objects per resumable proposal-sampling chunk
IMPORTED_POINTS_SEED = 0  # imported sets have no seed of their own; points still depend on the object id only


def point_seed(object_id: str, set_seed: int) -> int:
    """The surface-sampling seed of one object: a stable hash of its id and the set's seed, so its points never
    depend on which other objects a (partial, resumed or repaired) build sampled before it.

    :param object_id: the object's id.
    :param set_seed: the set's seed (the preset seed; ``IMPORTED_POINTS_SEED`` for imported sets).
    """
    return int.from_bytes(hashlib.sha256(f"{set_seed}/{object_id}".encode()).digest()[:8], "little")


def build_object_set(name: str, data_dir: str | os.PathLike[str] | None = None, progress: Progress | None = None,
                     *, seed: int = EMBEDDED_SEED, proposals: bool | None = None,
                     clock: Clock = time.perf_counter) -> dict[str, Any]:  # fmt: skip
    """Build, finish or repair set ``name`` in the data directory; return the build summary.

    An embedded preset is generated (or resumed, and any file loading would refuse is rebuilt). An imported set
    cannot be rebuilt without its source files: it is verified, and when it is incomplete or damaged
    :class:`ObjectSetNotBuilt` names the ``objects import`` command that repairs it.

    :param name: an embedded preset's set name (``embedded``, ``embedded-small``, ``embedded-large``) or an
        imported set.
    :param data_dir: the data directory (default: ``$RESDEX_DATA``, else ``data/`` in the checkout).
    :param progress: called as ``progress(stage, done, total)`` while points and proposals are made.
    :param seed: the preset's seed (a set built with another seed is refused, naming both).
    :param proposals: sample grasp proposals for every object not tried yet (``True``), never (``False``), or
        (``None``) for a new or unfinished set but not for a complete set built without them.
    :param clock: the time source of the summary's ``seconds`` (tests pass a fake one).
    """
    started = clock()
    store = ObjectStore(data_dir)
    if name not in PRESET_OF_SET:
        return _verify_imported(store, name, started, clock)
    info = store.manifest["sets"].get(name, {})
    if proposals is None:
        proposals = not info.get("complete") or "proposals" in info
    summary = build_embedded(store, PRESET_OF_SET[name], seed, proposals, progress, clock)
    summary["seconds"] = round(clock() - started, 3)
    return summary


def import_object_set(source: str | os.PathLike[str], name: str, data_dir: str | os.PathLike[str] | None = None,
                      fmt: str = "auto", max_parts: int = 8, scale: float = 1.0, limit: int | None = None,
                      proposals: bool = True, progress: Progress | None = None, log: Log | None = None,
                      clock: Clock = time.perf_counter) -> dict[str, Any]:  # fmt: skip
    """Import a mesh folder or a DexGraspNet tree as set ``name`` (resuming or repairing an earlier import).

    The summary's ``seconds`` is the whole wall time: reading, convex decomposition, points and proposals.

    :param source: the folder to import.
    :param name: the new set's name.
    :param data_dir: the data directory.
    :param fmt: ``meshes``, ``dexgraspnet`` or ``auto`` (DexGraspNet when ``source`` holds its mesh folder).
    :param max_parts: most convex pieces per object.
    :param scale: meshes: factor from file units to metres.
    :param limit: DexGraspNet: most objects per split file.
    :param proposals: sample grasp proposals for training objects the source has none for.
    :param progress: called as ``progress(stage, done, total)`` during every long step.
    :param log: called with one line per notable event (a skipped file, a rescaled mesh).
    :param clock: the time source of ``seconds`` (tests pass a fake one).
    """
    started = clock()
    source = Path(source)
    if not source.is_dir():
        raise ValueError(f"{source} is not a directory")
    if fmt == "auto":
        fmt = "dexgraspnet" if (source / "meshdatav3_scaled").is_dir() else "meshes"
    store = ObjectStore(data_dir)
    rescaled: dict[str, list[float]] = {}
    if fmt == "dexgraspnet":
        from envs.objects.importers.dexgraspnet import import_dexgraspnet

        result = import_dexgraspnet(source, name, max_parts=max_parts, limit=limit, progress=progress)
    elif fmt == "meshes":
        from envs.objects.importers.mesh_folder import import_mesh_folder

        result = import_mesh_folder(source, name, max_parts=max_parts, cache_dir=store.root / "cache" / "coacd",
                                    scale=scale, progress=progress, log=log)  # fmt: skip
        rescaled = {k: [round(a, 4), round(b, 4)] for k, (a, b) in result.rescaled.items()}
    else:
        raise ValueError(f"unknown import format {fmt!r}; known: auto, meshes, dexgraspnet")
    read_seconds = clock() - started
    if log:
        for path, reason in result.skipped:
            log(f"skipped {path}: {reason}")
    summary = store_import(store, name, result, kind=fmt, source=str(source.resolve()), proposals=proposals,
                           progress=progress, clock=clock)  # fmt: skip
    summary["read_seconds"] = round(read_seconds, 3)  # meshes and convex decomposition
    summary["rescaled"] = rescaled
    summary["seconds"] = round(clock() - started, 3)
    return summary


def build_embedded(store: ObjectStore, preset: str = "default", seed: int = EMBEDDED_SEED, proposals: bool = True,
                   progress: Progress | None = None, clock: Clock = time.perf_counter) -> dict[str, Any]:  # fmt: skip
    """Generate preset ``preset`` into ``store`` (resuming a partial build, repairing damaged files); return the
    build summary."""
    name = SET_OF_PRESET[preset]
    store.begin_set(name, kind="embedded", preset=preset, seed=seed)
    return _build(store, name, embedded_objects(preset, seed), {}, proposals, SceneConfig(), progress, seed, clock)


def store_import(store: ObjectStore, set_name: str, result: ImportResult, kind: str, source: str,
                 proposals: bool = True, progress: Progress | None = None,
                 clock: Clock = time.perf_counter) -> dict[str, Any]:  # fmt: skip
    """Write imported objects into ``store`` and sample proposals for training objects the source had none for."""
    if not result.objects:
        raise ValueError(f"nothing to import from {source}: every file was skipped ({len(result.skipped)})")
    store.begin_set(set_name, kind=kind, source=source)
    scene = scene_config_for(result.objects)
    summary = _build(store, set_name, result.objects, result.proposals, proposals, scene, progress,
                     IMPORTED_POINTS_SEED, clock)  # fmt: skip
    summary["skipped"] = [{"path": p, "reason": r} for p, r in result.skipped]
    return summary


def _verify_imported(store: ObjectStore, name: str, started: float, clock: Clock) -> dict[str, Any]:
    """An imported set cannot be regenerated here: check it is complete and intact, else name the import."""
    command = store.rebuild_command(name)
    if name not in store.set_names():
        known = ", ".join(sorted(set(store.set_names()) | set(PRESET_OF_SET)))
        raise ObjectSetNotBuilt(f"object set {name!r} does not exist in {store.root}; known sets: {known}")
    damaged = store.damaged_objects(name)
    if not store.set_info(name).get("complete") or damaged or store.proposals_damaged(name):
        what = f"{len(damaged)} damaged object file(s)" if damaged else "incomplete or damaged"
        raise ObjectSetNotBuilt(f"imported object set {name!r} in {store.root} is {what}; repair it with: {command}")
    return {"set": name, "objects": len(store.set_info(name)["objects"]), "new_objects": 0, "repaired": 0,
            "seconds": round(clock() - started, 3)}  # fmt: skip


def _build(store: ObjectStore, set_name: str, objects: Sequence[ObjectSpec], given: dict, with_proposals: bool,
           scene_config: SceneConfig, progress: Progress | None, seed: int,
           clock: Clock) -> dict[str, Any]:  # fmt: skip
    started = clock()
    # What loading would refuse is rebuilt: damaged object files are sampled again (their manifest entries are
    # replaced in place, so the set's order stays), and a damaged proposal file is sampled again from scratch.
    damaged = set(store.damaged_objects(set_name))
    if store.proposals_damaged(set_name):
        store.forget_proposals(set_name)
    missing = [o for o in objects if o.name in damaged or not store.has_object(set_name, o.name)]

    def items():
        if progress and missing:
            progress("points", 0, len(missing))
        for i, obj in enumerate(missing):
            yield obj, sample_surface(obj, seed=point_seed(obj.name, seed)), {}
            if progress:
                progress("points", i + 1, len(missing))

    store.add_objects(set_name, items())
    repaired = sum(o.name in damaged for o in missing)
    summary: dict[str, Any] = {"set": set_name, "objects": len(objects), "new_objects": len(missing) - repaired,
                               "repaired": repaired, "points_seconds": round(clock() - started, 3)}  # fmt: skip
    if with_proposals:
        summary.update(_sample_missing_proposals(store, set_name, objects, given, scene_config, progress, clock))
        store.mark_complete(set_name, proposal_share=summary["proposal_share"])
    else:
        store.mark_complete(set_name)
    summary["seconds"] = round(clock() - started, 3)
    return summary


def _sample_missing_proposals(store: ObjectStore, set_name: str, objects: Sequence[ObjectSpec], given: dict,
                              scene_config: SceneConfig, progress: Progress | None,
                              clock: Clock) -> dict[str, Any]:  # fmt: skip
    """Validated proposals for every object of every split, chunk by chunk; source proposals are kept as given.

    Unseen objects get proposals too: never for a reward, only so that every split starts its episodes the same
    way (the hand yawed like a grasp drawn from the object's proposals), as the reference's test objects do."""
    existing, report = store.read_proposals(set_name)
    stored = {oid: [(p, None) for p in items] for oid, items in existing.items()}
    sourced = {oid: items for oid, items in given.items() if items}  # e.g. DexGraspNet grasp files
    for oid, items in sourced.items():
        stored.setdefault(oid, [(p, None) for p in items])
    attempted = set(report.get("attempted", [])) | set(sourced)
    best_lift = dict(report.get("best_lift", {}))
    tried = int(report.get("candidates_tried", 0))
    seconds = float(report.get("sampling_seconds", 0.0))
    todo = [o for o in objects if o.name not in attempted]
    if not todo and report and set(sourced) <= set(existing):  # nothing new: leave the file (and its time) alone
        return {k: v for k, v in report.items() if k not in ("attempted", "best_lift")}
    if progress and todo:
        progress("proposals", 0, len(todo))
    for start in range(0, len(todo), PROPOSAL_CHUNK):
        chunk = todo[start : start + PROPOSAL_CHUNK]
        began = clock()

        def within(done: int, total: int, start: int = start, size: int = len(chunk)) -> None:
            # candidate chunks of the sampler, shown as the share of this chunk's objects
            if progress:
                progress("proposals", start + (size * done) // max(total, 1), len(todo))

        result = sample_proposals(chunk, SamplerConfig(), scene_config=scene_config, progress=within)
        seconds += clock() - began
        for obj in chunk:
            stored[obj.name] = [(p, None) for p in result.proposals.get(obj.name, [])]
            best_lift[obj.name] = float(result.best_lift.get(obj.name, 0.0))
            tried += int(result.tried.get(obj.name, 0))
            attempted.add(obj.name)
        _save(store, set_name, objects, stored, attempted, best_lift, tried, seconds)
        if progress:
            progress("proposals", min(start + PROPOSAL_CHUNK, len(todo)), len(todo))
    return _save(store, set_name, objects, stored, attempted, best_lift, tried, seconds)


def _save(store: ObjectStore, set_name: str, objects: Sequence[ObjectSpec], stored: dict, attempted: set[str],
          best_lift: dict[str, float], tried: int, seconds: float) -> dict[str, Any]:  # fmt: skip
    train = [o.name for o in objects if o.split == "train"]
    validated = sum(bool(stored.get(n)) for n in train)
    report = {
        "train_objects": len(train),
        "train_objects_with_proposal": validated,
        "proposal_share": round(validated / max(len(train), 1), 4),
        "objects_with_proposal": sum(bool(stored.get(o.name)) for o in objects),
        "candidates_tried": tried,
        "sampling_seconds": round(seconds, 2),
        "attempted": sorted(attempted),
        "best_lift": {k: round(v, 4) for k, v in sorted(best_lift.items())},
    }
    store.write_proposals(set_name, stored, report)
    return {k: v for k, v in report.items() if k not in ("attempted", "best_lift")}
