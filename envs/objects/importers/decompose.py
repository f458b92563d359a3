"""Convex decomposition of object meshes: the mesh's own hull when it is convex, otherwise CoACD, cached on disk.

MuJoCo collides every mesh geom through its convex hull, so a non-convex object has to be split into convex
pieces. CoACD takes 0.1-10 s per object on a CPU core, which is why its result is cached by content hash: a
second import of the same mesh with the same settings reads a small ``.npz`` instead.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from pathlib import Path

import numpy as np
import trimesh

from envs.files import atomic_write

logger = logging.getLogger(__name__)

#: A watertight mesh whose volume is at least this fraction of its hull's volume counts as convex.
CONVEX_VOLUME_RATIO = 0.98
#: The "fast" CoACD settings (simulator notes, Q6): 1-10 s per compound object instead of 3-30 s.
COACD_SETTINGS: dict[str, object] = {
    "threshold": 0.1,
    "resolution": 1000,
    "mcts_iterations": 50,
    "mcts_max_depth": 2,
    "mcts_nodes": 20,
    "preprocess_mode": "auto",
    "seed": 0,
}
# Bump when the cache file layout or the meaning of its contents changes, so stale files are not reused.
_CACHE_FORMAT = 1


def convex_parts(mesh: trimesh.Trimesh, max_parts: int, cache_dir: Path | None = None) -> list[np.ndarray]:
    """Vertex arrays (V, 3) of at most ``max_parts`` convex pieces whose union approximates ``mesh``.

    :param mesh: the object mesh, in its final units and frame (the pieces come back in the same frame).
    :param max_parts: most pieces to return; CoACD output beyond it is merged (see ``merge_parts``).
    :param cache_dir: where CoACD results are cached by content hash; ``None`` disables the cache.
    """
    if max_parts < 1:
        raise ValueError(f"max_parts must be at least 1, got {max_parts}")
    if is_convex(mesh):
        return [hull_vertices(mesh.vertices)]
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"{cache_key(mesh, max_parts)}.npz"
        cached = read_cached_parts(cache_file)
        if cached is not None:
            return cached
    parts = merge_parts(_run_coacd(mesh, max_parts), max_parts)
    if not parts:  # CoACD found nothing usable: the whole hull is still a valid (if coarse) collision shape
        parts = [hull_vertices(mesh.vertices)]
    if cache_file is not None:
        write_cached_parts(cache_file, parts)
    return parts


def is_convex(mesh: trimesh.Trimesh, ratio: float = CONVEX_VOLUME_RATIO) -> bool:
    """Whether ``mesh`` is (close to) its own convex hull, judged by enclosed volume.

    :param mesh: the mesh to test.
    :param ratio: smallest mesh-volume / hull-volume ratio that still counts as convex.
    """
    # The enclosed volume of an open mesh means nothing, so such meshes always go through CoACD.
    if not mesh.is_watertight:
        return False
    hull_volume = float(mesh.convex_hull.volume)
    return hull_volume > 0.0 and abs(float(mesh.volume)) >= ratio * hull_volume


def hull_vertices(points: np.ndarray) -> np.ndarray:
    """The vertices of the convex hull of ``points`` (N, 3); raises ``ValueError`` for a degenerate set.

    :param points: any point cloud with at least four non-coplanar points.
    """
    points = np.asarray(points, dtype=float).reshape(-1, 3)
    if len(points) < 4:
        raise ValueError(f"a convex hull needs at least 4 points, got {len(points)}")
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # trimesh divides by the zero volume of flat hulls
            hull = trimesh.convex.convex_hull(points)
            volume = float(hull.volume)
    except Exception as err:  # qhull reports degenerate input through its own exception types
        raise ValueError(f"degenerate point set ({err})") from err
    if not volume > 0.0:
        raise ValueError("degenerate point set (zero hull volume)")
    return np.asarray(hull.vertices, dtype=float)


def hull_volume(points: np.ndarray) -> float:
    """Volume of the convex hull of ``points``; zero for a degenerate set.

    :param points: (N, 3) points.
    """
    try:
        with np.errstate(invalid="ignore", divide="ignore"):
            return float(trimesh.convex.convex_hull(np.asarray(points, dtype=float)).volume)
    except Exception:  # a flat or tiny set has no hull: it encloses nothing
        return 0.0


def merge_parts(parts: list[np.ndarray], max_parts: int) -> list[np.ndarray]:
    """Reduce convex pieces to at most ``max_parts`` by repeatedly merging the smallest into a neighbour.

    The smallest piece (by hull volume) joins the piece whose merged hull adds the least empty volume, i.e. the
    neighbour it fits onto best; the merged piece is the hull of the union. Degenerate pieces are dropped.

    :param parts: vertex arrays of convex pieces.
    :param max_parts: most pieces to keep.
    """
    pieces: list[np.ndarray] = []
    for part in parts:
        try:
            pieces.append(hull_vertices(part))
        except ValueError:
            continue  # a flat sliver contributes no collision volume
    volumes = [hull_volume(p) for p in pieces]
    while len(pieces) > max_parts:
        small = int(np.argmin(volumes))
        others = [j for j in range(len(pieces)) if j != small]
        added = [hull_volume(np.concatenate([pieces[small], pieces[j]])) - volumes[j] for j in others]
        target = others[int(np.argmin(added))]
        pieces[target] = hull_vertices(np.concatenate([pieces[small], pieces[target]]))
        volumes[target] = hull_volume(pieces[target])
        del pieces[small], volumes[small]
    return pieces


def cache_key(mesh: trimesh.Trimesh, max_parts: int) -> str:
    """sha256 of the mesh geometry and every setting that changes the decomposition.

    :param mesh: the mesh to decompose.
    :param max_parts: the part limit (part of the result, so part of the key).
    """
    digest = hashlib.sha256()
    vertices = np.ascontiguousarray(mesh.vertices, dtype="<f8")
    faces = np.ascontiguousarray(mesh.faces, dtype="<i8")
    digest.update(np.asarray(vertices.shape + faces.shape, dtype="<i8").tobytes())
    digest.update(vertices.tobytes())
    digest.update(faces.tobytes())
    settings = {
        **COACD_SETTINGS,
        "max_parts": max_parts,
        "format": _CACHE_FORMAT,
        "coacd": _coacd_version(),
    }
    digest.update(json.dumps(settings, sort_keys=True).encode())
    return digest.hexdigest()


def read_cached_parts(path: Path) -> list[np.ndarray] | None:
    """Parts stored at ``path``, or ``None`` when the file is missing, unreadable or malformed.

    :param path: a cache file written by ``write_cached_parts``.
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            count = int(data["count"])
            parts = [np.asarray(data[f"part_{i}"], dtype=float) for i in range(count)]
    except Exception as err:  # any damage (truncation, foreign file) just means: recompute
        logger.warning("ignoring unreadable decomposition cache %s (%s)", path, err)
        return None
    if count < 1 or any(p.ndim != 2 or p.shape[1] != 3 or not np.all(np.isfinite(p)) for p in parts):
        logger.warning("ignoring malformed decomposition cache %s", path)
        return None
    return parts


def write_cached_parts(path: Path, parts: list[np.ndarray]) -> None:
    """Store ``parts`` at ``path`` atomically: readers see the old file or the complete new one, never half.

    A failure to write only costs a recomputation later, so it is logged rather than raised.

    :param path: destination ``.npz`` file; its folder is created when missing.
    :param parts: vertex arrays of the convex pieces.
    """
    arrays = {f"part_{i}": np.asarray(p, dtype=float) for i, p in enumerate(parts)}
    try:
        atomic_write(path, lambda tmp: np.savez(tmp, count=np.int64(len(parts)), **arrays))
    except OSError as err:
        logger.warning("could not write decomposition cache %s (%s)", path, err)


def _coacd_version() -> str:
    # The module has no __version__; a new release may decompose differently, so it is part of the key.
    try:
        return importlib.metadata.version("coacd")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _run_coacd(mesh: trimesh.Trimesh, max_parts: int) -> list[np.ndarray]:
    """CoACD pieces of ``mesh`` as vertex arrays (the one place that calls the decomposer)."""
    import coacd

    coacd.set_log_level("error")  # CoACD logs every iteration at info level
    source = coacd.Mesh(np.asarray(mesh.vertices, dtype=float), np.asarray(mesh.faces, dtype=np.int32))
    result = coacd.run_coacd(source, max_convex_hull=max_parts, **COACD_SETTINGS)
    return [np.asarray(vertices, dtype=float) for vertices, _faces in result]
