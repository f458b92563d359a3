"""Building object sets into the data directory: surface points, then sim-validated grasp proposals.

Both steps resume: objects already in the manifest are skipped, and proposals are sampled in chunks whose
results are saved as each chunk finishes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from envs.config import SceneConfig
from envs.objects.embedded import EMBEDDED_SEED, SET_OF_PRESET, embedded_objects
from envs.objects.grasp_sampler import SamplerConfig, sample_proposals
from envs.objects.importers.result import ImportResult
from envs.objects.spec import ObjectSpec
from envs.objects.store import ObjectStore
from envs.objects.surface import sample_surface

Progress = Callable[[str, int, int], None]  # (stage, done, total)
PROPOSAL_CHUNK = 64  # objects per resumable proposal-sampling chunk
IMPORTED_HULL_SLOTS = 8


def build_embedded(store: ObjectStore, preset: str = "default", seed: int = EMBEDDED_SEED, proposals: bool = True,
                   progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Generate preset ``preset`` into ``store`` (resuming a partial build); return the build summary."""
    name = SET_OF_PRESET[preset]
    store.begin_set(name, kind="embedded", preset=preset, seed=seed)
    return _build(store, name, embedded_objects(preset, seed), {}, proposals, SceneConfig(), progress)


def store_import(store: ObjectStore, set_name: str, result: ImportResult, kind: str, source: str,
                 proposals: bool = True, progress: Progress | None = None) -> dict[str, Any]:  # fmt: skip
    """Write imported objects into ``store`` and sample proposals for training objects the source had none for."""
    if not result.objects:
        raise ValueError(f"nothing to import from {source}: every file was skipped ({len(result.skipped)})")
    store.begin_set(set_name, kind=kind, source=source)
    scene = scene_config_for(result.objects)
    summary = _build(store, set_name, result.objects, result.proposals, proposals, scene, progress)
    summary["skipped"] = [{"path": p, "reason": r} for p, r in result.skipped]
    return summary


def scene_config_for(objects: Sequence[ObjectSpec]) -> SceneConfig:
    """Scene settings that fit every object (hull slots only when some object has hulls)."""
    hulls = max((o.num_hulls for o in objects), default=0)
    return SceneConfig(hull_slots=max(hulls, IMPORTED_HULL_SLOTS) if hulls else 0)


def _build(store: ObjectStore, set_name: str, objects: Sequence[ObjectSpec], given: dict, with_proposals: bool,
           scene_config: SceneConfig, progress: Progress | None) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    missing = [o for o in objects if not store.has_object(set_name, o.name)]

    def items():
        for i, obj in enumerate(missing):
            if progress:
                progress("points", i + 1, len(missing))
            yield obj, sample_surface(obj, seed=i), {}

    store.add_objects(set_name, items())
    points_seconds = time.perf_counter() - started
    summary: dict[str, Any] = {"set": set_name, "objects": len(objects), "new_objects": len(missing),
                               "points_seconds": round(points_seconds, 3)}  # fmt: skip
    if with_proposals:
        summary.update(_sample_missing_proposals(store, set_name, objects, given, scene_config, progress))
        store.mark_complete(set_name, proposal_share=summary["proposal_share"])
    else:
        store.mark_complete(set_name)
    summary["seconds"] = round(time.perf_counter() - started, 3)
    return summary


def _sample_missing_proposals(store: ObjectStore, set_name: str, objects: Sequence[ObjectSpec], given: dict,
                              scene_config: SceneConfig, progress: Progress | None) -> dict[str, Any]:  # fmt: skip
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
    for start in range(0, len(todo), PROPOSAL_CHUNK):
        chunk = todo[start : start + PROPOSAL_CHUNK]
        began = time.perf_counter()
        result = sample_proposals(chunk, SamplerConfig(), scene_config=scene_config)
        seconds += time.perf_counter() - began
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
