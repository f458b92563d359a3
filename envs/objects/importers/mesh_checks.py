"""Loading user meshes and checking that they make sensible graspable objects.

Size convention: an object's frame has its origin at the centre of its axis-aligned bounding box and is in
metres. After the user's ``scale`` factor the longest side must lie in ``SIDE_RANGE`` (what a hand the size of
the Shadow hand can grasp). A longest side outside ``HARD_SIDE_RANGE`` almost surely means wrong units (a mesh
in millimetres, say), so it is an error that suggests ``--scale``; one in between is rescaled to the nearest
bound of ``SIDE_RANGE`` and the factor actually applied is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

logger = logging.getLogger(__name__)

MESH_EXTENSIONS = (".obj", ".stl", ".ply")
#: Longest bounding-box side an imported object ends up with, metres.
SIDE_RANGE = (0.05, 0.25)
#: Longest side (after the user's scale) beyond which the units are taken to be wrong, metres.
HARD_SIDE_RANGE = (0.01, 1.0)
#: Convex-hull volume below which an object counts as flat, m^3 (1 mm^3).
MIN_HULL_VOLUME = 1e-9


class MeshImportError(ValueError):
    """A mesh file that cannot become an object; the message names the file and the problem."""


@dataclass(frozen=True)
class PreparedMesh:
    """A validated mesh in the object frame.

    :param mesh: the mesh in metres, centred on its bounding-box centre.
    :param scale: the total factor applied to the file's coordinates (user scale times any automatic rescale).
    :param rescaled: whether the size check changed the user's scale.
    :param user_scale: the user's factor alone (``scale / user_scale`` is the automatic rescale).
    """

    mesh: trimesh.Trimesh
    scale: float
    rescaled: bool
    user_scale: float = 1.0


def load_mesh(path: Path | str) -> trimesh.Trimesh:
    """Read an ``.obj``, ``.stl`` or ``.ply`` file as one triangle mesh (scenes are concatenated).

    Raises ``MeshImportError`` for an unknown extension, an unreadable or empty file, or non-finite vertices.

    :param path: the mesh file.
    """
    path = Path(path)
    if path.suffix.lower() not in MESH_EXTENSIONS:
        raise MeshImportError(f"{path}: unknown mesh extension {path.suffix!r} (expected one of {MESH_EXTENSIONS})")
    try:
        # process=False keeps NaN vertices visible to the check below instead of silently merged away
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as err:  # trimesh raises many exception types for broken files
        raise MeshImportError(f"{path}: cannot load mesh ({type(err).__name__}: {err})") from err
    if not isinstance(mesh, trimesh.Trimesh):
        raise MeshImportError(f"{path}: cannot load mesh (got {type(mesh).__name__}, not a triangle mesh)")
    if len(mesh.faces) == 0 or len(mesh.vertices) == 0:
        raise MeshImportError(f"{path}: empty mesh (no faces)")
    if not np.all(np.isfinite(mesh.vertices)):
        raise MeshImportError(f"{path}: mesh has non-finite (NaN or infinite) vertices")
    mesh.merge_vertices()  # lets watertightness (and so the convexity test) see through duplicated vertices
    return mesh


def normalise_mesh(mesh: trimesh.Trimesh, source: Path | str, scale: float = 1.0) -> PreparedMesh:
    """Scale ``mesh`` into the size convention and centre it on its bounding box (a copy; the input is kept).

    Raises ``MeshImportError`` for a mesh far too small or big, or one with (near) zero volume.

    :param mesh: the mesh in file units.
    :param source: the file it came from, named in error messages.
    :param scale: the user's factor from file units to metres.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise MeshImportError(f"{source}: scale must be a positive number, got {scale!r}")
    mesh = mesh.copy()
    mesh.apply_scale(scale)
    longest = float(np.max(mesh.extents))
    if not longest > 0.0:
        raise MeshImportError(f"{source}: zero volume (all vertices coincide)")
    low, high = HARD_SIDE_RANGE
    if longest < low or longest > high:
        size_word = "small" if longest < low else "big"
        raise MeshImportError(
            f"{source}: far too {size_word}: longest side {longest:.4g} m after scale {scale:g}; objects must be "
            f"{SIDE_RANGE[0]}-{SIDE_RANGE[1]} m, so the file's units are probably not metres (pass --scale)"
        )
    factor = float(np.clip(longest, *SIDE_RANGE)) / longest
    if factor != 1.0:
        mesh.apply_scale(factor)
        logger.info("%s: longest side %.4g m rescaled by %.4g into %s m", source, longest, factor, SIDE_RANGE)
    mesh.apply_translation(-mesh.bounds.mean(axis=0))
    _check_volume(mesh, source)
    return PreparedMesh(mesh=mesh, scale=scale * factor, rescaled=factor != 1.0, user_scale=scale)


def load_object_mesh(path: Path | str, scale: float = 1.0) -> PreparedMesh:
    """``load_mesh`` followed by ``normalise_mesh``: a file ready to become an object.

    :param path: the mesh file.
    :param scale: the user's factor from file units to metres.
    """
    return normalise_mesh(load_mesh(path), path, scale)


def _check_volume(mesh: trimesh.Trimesh, source: Path | str) -> None:
    # The hull's volume, not the mesh's: open or inconsistently oriented meshes are fine for CoACD, flat ones not.
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # trimesh divides by the zero volume of flat hulls
            volume = float(mesh.convex_hull.volume)
    except Exception:  # qhull fails on coplanar input, which is exactly the flat case
        volume = 0.0
    if not volume >= MIN_HULL_VOLUME:
        raise MeshImportError(
            f"{source}: zero or near-zero volume (convex hull {volume:.3g} m^3, extents "
            f"{np.array2string(mesh.extents, precision=4)} m): a flat or degenerate mesh"
        )
