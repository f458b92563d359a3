"""The object data directory: one manifest plus per-object files, all written atomically and checksummed.

Layout::

    <data>/manifest.json                      format version, and per set: kind, source, seed, objects, checksums
    <data>/sets/<set>/objects/<key>.npz       one object: its description (JSON) and its surface points
    <data>/sets/<set>/proposals.json          validated grasp proposals and the sampling report

Files are written to a temporary name and renamed, and the manifest records a file only after it is complete,
so an interrupted build leaves nothing half-written that a reader could pick up, and the next build resumes
from the objects the manifest already lists.

Several builds and imports may run at once on one data directory: every change to the manifest re-reads it
under ``<data>/manifest.lock`` and changes only its own entries, so no writer drops another's set.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from envs.files import atomic_write_bytes, atomic_write_json, file_lock, read_json
from envs.objects.serialize import object_from_dict, object_to_dict, proposal_from_dict, proposal_to_dict
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal

FORMAT_VERSION = 1
DATA_ENV_VAR = "RESDEX_DATA"
_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # inside the checkout; .gitignore lists it
MANIFEST_BATCH = 32  # objects written between two manifest updates
_T = TypeVar("_T")


class ObjectSetNotBuilt(ValueError):
    """An object set that is missing, incomplete or damaged in the data directory; the one-line message names
    the command that builds or repairs it. Loading never builds: only ``objects build``/``import`` and the
    pipeline's objects stage do."""


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``$RESDEX_DATA``, else ``data/`` in the checkout."""
    if data_dir:
        return Path(data_dir)
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env) if env else _DEFAULT_DATA_DIR


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def file_key(object_id: str) -> str:
    """A file-name-safe key for an object id (ids may contain ``/`` or ``@``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", object_id)


class ObjectStore:
    """Read and write object sets in a data directory.

    :param root: the data directory (see :func:`resolve_data_dir`).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_data_dir(root)
        self.manifest_path = self.root / "manifest.json"
        self.lock_path = self.root / "manifest.lock"
        self.manifest = self._read_manifest()

    # ------------------------------------------------------------------ manifest
    def _read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"format_version": FORMAT_VERSION, "sets": {}}
        try:
            data = read_json(self.manifest_path, "object manifest")
        except OSError as err:
            raise ValueError(f"{self.manifest_path}: unreadable object manifest ({err})") from err
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or "sets" not in data:
            raise ValueError(
                f"{self.manifest_path}: object manifest format {data.get('format_version') if isinstance(data, dict) else '?'}"
                f" is not {FORMAT_VERSION}; move the directory away and rebuild"
            )
        return data

    def _update(self, change: Callable[[dict[str, Any]], _T]) -> _T:
        """Apply ``change(sets)`` to the manifest as it is on disk now, under the manifest lock, and save it.

        Another process may have added or changed other sets since this store read the manifest; re-reading
        under the lock keeps their entries, and ``self.manifest`` becomes the merged result.

        :param change: edits the ``sets`` mapping in place; its return value is returned.
        """
        with file_lock(self.lock_path):
            self.manifest = self._read_manifest()
            before = json.dumps(self.manifest, sort_keys=True)
            result = change(self.manifest["sets"])
            if json.dumps(self.manifest, sort_keys=True) != before:  # a no-op leaves the file (and its readers) alone
                atomic_write_json(self.manifest_path, self.manifest)
        return result

    def refresh(self) -> None:
        """Re-read the manifest (another process may have changed it)."""
        self.manifest = self._read_manifest()

    def set_names(self) -> list[str]:
        return sorted(self.manifest["sets"])

    def set_info(self, name: str) -> dict[str, Any]:
        """The manifest entry of set ``name`` (KeyError naming the known sets when absent)."""
        if name not in self.manifest["sets"]:
            raise KeyError(f"object set {name!r} is not in {self.manifest_path}; known: {self.set_names()}")
        return self.manifest["sets"][name]

    def begin_set(self, name: str, **info: Any) -> dict[str, Any]:
        """Create set ``name`` or, if it exists with the same ``info``, resume it."""

        def begin(sets: dict[str, Any]) -> None:
            if name in sets:
                old = {k: sets[name].get(k) for k in info}
                if old != info:
                    raise ValueError(f"object set {name!r} in {self.root} was built with {old}, not {info}; "
                                     "use another --name or delete the set")  # fmt: skip
                return
            sets[name] = {**info, "format_version": FORMAT_VERSION, "complete": False, "objects": {}}

        self.refresh()
        if name in self.manifest["sets"]:  # resuming: check without writing (a mismatch must change nothing)
            begin(self.manifest["sets"])
        else:
            self._update(begin)
        return self.set_info(name)

    def mark_complete(self, name: str, **extra: Any) -> None:
        """Record that set ``name`` is fully built (``extra``: more fields for its manifest entry)."""
        self._update(lambda sets: self._entry(sets, name).update(complete=True, **extra))

    def _entry(self, sets: dict[str, Any], name: str) -> dict[str, Any]:
        if name not in sets:  # deleted by someone else while this process was writing it
            raise KeyError(f"object set {name!r} vanished from {self.manifest_path} while being written")
        return sets[name]

    def rebuild_command(self, name: str) -> str:
        """The command that builds, finishes or repairs set ``name``.

        :param name: a set of this data directory or an embedded preset's set name.
        """
        from envs.objects.embedded import PRESET_OF_SET

        flag = "" if self.root == resolve_data_dir(None) else f" --data-dir {self.root}"
        info = self.manifest["sets"].get(name, {})
        if name in PRESET_OF_SET:
            return f"python -m resdex_sb3.objects build --preset {info.get('preset', PRESET_OF_SET[name])}{flag}"
        return f"python -m resdex_sb3.objects import {info.get('source', 'DIR')} --name {name}{flag}"

    # ------------------------------------------------------------------ objects
    def has_object(self, set_name: str, object_id: str) -> bool:
        entry = self.manifest["sets"].get(set_name, {}).get("objects", {}).get(object_id)
        return entry is not None and (self.root / entry["file"]).exists()

    def damaged_objects(self, set_name: str) -> list[str]:
        """Ids of the set's objects whose file is missing or differs from its recorded checksum (what loading
        refuses).

        :param set_name: a set of this data directory.
        """
        damaged = []
        for object_id, entry in self.set_info(set_name)["objects"].items():
            try:
                payload = (self.root / entry["file"]).read_bytes()
            except OSError:
                damaged.append(object_id)
                continue
            if sha256(payload) != entry["sha256"]:
                damaged.append(object_id)
        return damaged

    def proposals_damaged(self, set_name: str) -> bool:
        """Whether the set records a proposal file that is missing or differs from its checksum.

        :param set_name: a set of this data directory.
        """
        entry = self.set_info(set_name).get("proposals")
        if entry is None:
            return False
        try:
            return sha256((self.root / entry["file"]).read_bytes()) != entry["sha256"]
        except OSError:
            return True

    def forget_proposals(self, set_name: str) -> None:
        """Drop the set's proposal record (a damaged file is then sampled again from scratch).

        :param set_name: a set of this data directory.
        """
        self._update(lambda sets: self._entry(sets, set_name).pop("proposals", None))

    def add_objects(self, set_name: str, items: Iterable[tuple[ObjectSpec, np.ndarray, dict[str, Any]]]) -> int:
        """Write (object, surface points, extra metadata) triples; the manifest is updated after each batch of
        ``MANIFEST_BATCH``. An object already listed is replaced in place (its position in the set is kept)."""
        self.set_info(set_name)  # a clear KeyError before any file is written
        batch: dict[str, dict[str, Any]] = {}
        written = 0

        def flush() -> None:
            if batch:
                entries = dict(batch)
                self._update(lambda sets: self._entry(sets, set_name)["objects"].update(entries))
                batch.clear()

        for obj, points, extra in items:
            key = file_key(obj.name)
            rel = f"sets/{file_key(set_name)}/objects/{key}.npz"
            payload = _npz_bytes(spec=json.dumps(object_to_dict(obj)), points=np.asarray(points, dtype=np.float32))
            atomic_write_bytes(self.root / rel, payload)
            batch[obj.name] = {"file": rel, "sha256": sha256(payload), "split": obj.split,
                               "category": obj.category, **extra}  # fmt: skip
            written += 1
            if len(batch) >= MANIFEST_BATCH:
                flush()
        flush()
        return written

    def objects(self, set_name: str) -> list[ObjectSpec]:
        """Every object of a set, in manifest order, checksums verified."""
        return [self._load_entry(set_name, oid)[0] for oid in self.set_info(set_name)["objects"]]

    def points(self, set_name: str) -> dict[str, np.ndarray]:
        """Object id -> (4096, 3) surface points."""
        return {oid: self._load_entry(set_name, oid)[1] for oid in self.set_info(set_name)["objects"]}

    def _load_entry(self, set_name: str, object_id: str) -> tuple[ObjectSpec, np.ndarray]:
        entry = self.set_info(set_name)["objects"][object_id]
        path = self.root / entry["file"]
        try:
            payload = path.read_bytes()
        except OSError as err:
            repair = f"repair set {set_name!r} with: {self.rebuild_command(set_name)}"
            missing = f"{path}: object file of {object_id!r} is missing ({err.strerror})"
            raise ObjectSetNotBuilt(f"{missing}; {repair}") from err
        if sha256(payload) != entry["sha256"]:
            raise ObjectSetNotBuilt(f"{path}: checksum mismatch for object {object_id!r}; "
                                    f"repair set {set_name!r} with: {self.rebuild_command(set_name)}")  # fmt: skip
        with np.load(io.BytesIO(payload)) as data:
            spec = object_from_dict(json.loads(str(data["spec"])), str(path))
            return spec, data["points"]

    # ------------------------------------------------------------------ proposals
    def proposals_path(self, set_name: str) -> Path:
        return self.root / "sets" / file_key(set_name) / "proposals.json"

    def write_proposals(self, set_name: str, proposals: dict[str, list[tuple[GraspProposal, float | None]]],
                        report: dict[str, Any]) -> None:  # fmt: skip
        """Replace the set's proposal file (object id -> [(proposal, lift)]) and record its checksum."""
        data = {
            "report": report,
            "proposals": {oid: [proposal_to_dict(p, lift) for p, lift in items] for oid, items in proposals.items()},
        }
        payload = (json.dumps(data, indent=1) + "\n").encode()
        path = self.proposals_path(set_name)
        atomic_write_bytes(path, payload)
        entry = {"file": str(path.relative_to(self.root)), "sha256": sha256(payload)}
        self._update(lambda sets: self._entry(sets, set_name).update(proposals=entry))

    def read_proposals(self, set_name: str) -> tuple[dict[str, list[GraspProposal]], dict[str, Any]]:
        """(object id -> proposals, sampling report); empty when the set has none yet."""
        entry = self.set_info(set_name).get("proposals")
        if entry is None:
            return {}, {}
        path = self.root / entry["file"]
        try:
            payload = path.read_bytes()
        except OSError as err:
            repair = f"repair set {set_name!r} with: {self.rebuild_command(set_name)}"
            raise ObjectSetNotBuilt(f"{path}: proposal file is missing ({err.strerror}); {repair}") from err
        if sha256(payload) != entry["sha256"]:
            raise ObjectSetNotBuilt(f"{path}: checksum mismatch; "
                                    f"repair set {set_name!r} with: {self.rebuild_command(set_name)}")  # fmt: skip
        data = json.loads(payload)
        proposals = {
            oid: [proposal_from_dict(p, f"{path} [{oid}][{i}]") for i, p in enumerate(items)]
            for oid, items in data["proposals"].items()
        }
        return proposals, data.get("report", {})


def _npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
