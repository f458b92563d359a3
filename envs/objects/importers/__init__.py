"""Importers that turn meshes on disk into objects: a folder of user meshes, or the DexGraspNet object set.

The names below are loaded on first use, so importing ``envs.objects.importers.result`` alone does not pull in
trimesh, CoACD or the scene.
"""

from __future__ import annotations

import importlib

# public name -> defining submodule
_EXPORTS = {
    "ImportResult": "result",
    "MeshImportError": "mesh_checks",
    "load_mesh": "mesh_checks",
    "normalise_mesh": "mesh_checks",
    "load_object_mesh": "mesh_checks",
    "convex_parts": "decompose",
    "merge_parts": "decompose",
    "import_mesh_folder": "mesh_folder",
    "MeshFolderResult": "mesh_folder",
    "import_dexgraspnet": "dexgraspnet",
    "read_split_file": "dexgraspnet",
    "proposal_from_qpos": "dexgraspnet",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    """Load an exported name from its submodule on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
