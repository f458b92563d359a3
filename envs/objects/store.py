"""The object data directory: one manifest plus per-object files, all written atomically and checksummed.

Layout::

    <data>/manifest.json                      format version, and per set: kind, source, seed, objects, checksums
    <data>/sets/<set>/objects/<key>.npz       one object: its description (JSON) and its surface points
    <data>/sets/<set>/proposals.json          validated grasp proposals and the sampling report

Files are written to a temporary name and renamed, and the manifest records a file only after it is complete,
so an interrupted build leaves nothing half-written that a reader could pick up, and the next build resumes
from the objects the manifest already lists.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from envs.objects.serialize import object_from_dict, object_to_dict, proposal_from_dict, proposal_to_dict
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal

FORMAT_VERSION = 1
DATA_ENV_VAR = "RESDEX_DATA"
_DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / "data"  # inside the checkout; .gitignore lists it


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """``data_dir`` if given, else ``$RESDEX_DATA``, else ``data/`` in the checkout."""
    if data_dir:
        return Path(data_dir)
    env = os.environ.get(DATA_ENV_VAR)
    return Path(env) if env else _DEFAULT_DATA_DIR


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any) -> None:
    """JSON version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


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
        self.manifest = self._read_manifest()

    # ------------------------------------------------------------------ manifest
    def _read_manifest(self) -> dict[str, Any]:
        if not self.manifest_path.exists():
            return {"format_version": FORMAT_VERSION, "sets": {}}
        try:
            data = json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"{self.manifest_path}: unreadable object manifest ({err})") from err
        if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION or "sets" not in data:
            raise ValueError(
                f"{self.manifest_path}: object manifest format {data.get('format_version') if isinstance(data, dict) else '?'}"
                f" is not {FORMAT_VERSION}; move the directory away and rebuild"
            )
        return data

    def _save_manifest(self) -> None:
        atomic_write_json(self.manifest_path, self.manifest)

    def set_names(self) -> list[str]:
        return sorted(self.manifest["sets"])

    def set_info(self, name: str) -> dict[str, Any]:
        """The manifest entry of set ``name`` (KeyError naming the known sets when absent)."""
        if name not in self.manifest["sets"]:
            raise KeyError(f"object set {name!r} is not in {self.manifest_path}; known: {self.set_names()}")
        return self.manifest["sets"][name]

    def begin_set(self, name: str, **info: Any) -> dict[str, Any]:
        """Create set ``name`` or, if it exists with the same ``info``, resume it."""
        sets = self.manifest["sets"]
        if name in sets:
            old = {k: sets[name].get(k) for k in info}
            if old != info:
                raise ValueError(f"object set {name!r} in {self.root} was built with {old}, not {info}; "
                                 "use another --name or delete the set")  # fmt: skip
            return sets[name]
        sets[name] = {**info, "format_version": FORMAT_VERSION, "complete": False, "objects": {}}
        self._save_manifest()
        return sets[name]

    def mark_complete(self, name: str, **extra: Any) -> None:
        self.set_info(name).update(complete=True, **extra)
        self._save_manifest()

    # ------------------------------------------------------------------ objects
    def has_object(self, set_name: str, object_id: str) -> bool:
        entry = self.manifest["sets"].get(set_name, {}).get("objects", {}).get(object_id)
        return entry is not None and (self.root / entry["file"]).exists()

    def add_objects(self, set_name: str, items: Iterable[tuple[ObjectSpec, np.ndarray, dict[str, Any]]]) -> int:
        """Write (object, surface points, extra metadata) triples; the manifest is saved after each batch of 32."""
        info = self.set_info(set_name)
        written = 0
        for obj, points, extra in items:
            key = file_key(obj.name)
            rel = f"sets/{file_key(set_name)}/objects/{key}.npz"
            payload = _npz_bytes(spec=json.dumps(object_to_dict(obj)), points=np.asarray(points, dtype=np.float32))
            atomic_write_bytes(self.root / rel, payload)
            info["objects"][obj.name] = {"file": rel, "sha256": sha256(payload), "split": obj.split,
                                         "category": obj.category, **extra}  # fmt: skip
            written += 1
            if written % 32 == 0:
                self._save_manifest()
        self._save_manifest()
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
            raise ValueError(f"{path}: object file of {object_id!r} is missing ({err}); rebuild set {set_name!r}") from err
        if sha256(payload) != entry["sha256"]:
            raise ValueError(f"{path}: checksum mismatch for object {object_id!r}; rebuild set {set_name!r}")
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
        self.set_info(set_name)["proposals"] = {"file": str(path.relative_to(self.root)), "sha256": sha256(payload)}
        self._save_manifest()

    def read_proposals(self, set_name: str) -> tuple[dict[str, list[GraspProposal]], dict[str, Any]]:
        """(object id -> proposals, sampling report); empty when the set has none yet."""
        entry = self.set_info(set_name).get("proposals")
        if entry is None:
            return {}, {}
        path = self.root / entry["file"]
        payload = path.read_bytes()
        if sha256(payload) != entry["sha256"]:
            raise ValueError(f"{path}: checksum mismatch; rerun `python -m resdex_sb3.objects build`")
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
