"""Import the DexGraspNet / UniDexGrasp object set (the ResDex benchmark) and its grasp poses.

On-disk layout (reference notes, section 6), under ``root`` or ``root/assets``::

    meshdatav3_scaled/<src>/<name>/coacd/decomposed.obj   CoACD pieces in normalised units (radius ~0.98)
    datasetv4.1/<src>/<name>/*.npz                        grasps: ``qpos`` dict (28 entries), ``scale``, ``plane``
    train_set.yaml, test_set_seen_cat.yaml, test_set_unseen_cat.yaml   (or in cfg/, dexgrasp/cfg/, ../cfg/)

An object code is ``<src>/<name>`` (``core/mug-928a...``); each (code, scale) pair is one object, id
``<code>@<scale>``, whose vertices are the normalised ones times the scale (so the bounding-sphere radius is about
0.97 * scale metres), re-centred on their bounding box. The dataset's scale is kept as is, not pushed into the
mesh-folder size range: the grasp poses are only valid at that scale.

Grasp conversion: the 22 joint angles are reordered by name into ``HAND_JOINTS``; the wrist Euler angles
(``WRJRx/y/z``, IsaacGym's ``quat_from_euler_xyz``: R = Rz Ry Rx) give ``palm_quat``; the wrist translation
``WRJT`` is taken as the palm origin (both hands are the OpenAI Shadow hand, whose mount, wrist and palm frames
share one orientation: fingers along +z, palm facing -y), so ``hand_point = WRJT + R @ HAND_POINT_IN_PALM``,
minus the re-centring offset. This is an approximation: the reference's root frame may sit a fixed distance
from our palm origin along the palm's z axis (the OpenAI hand's palm is 0.034 m above its wrist joint);
``REFERENCE_ROOT_IN_PALM`` is where to put that offset once it is measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import yaml
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from envs.objects.importers.decompose import merge_parts
from envs.objects.importers.mesh_checks import HARD_SIDE_RANGE, MeshImportError
from envs.objects.importers.result import ImportResult
from envs.objects.spec import ConvexPart, ObjectSpec, quat_to_mat
from envs.proposals import GraspProposal
from envs.quaternions import multiply
from envs.scene import HAND_JOINTS, HAND_POINT_IN_PALM

#: Split file name -> our split name.
SPLIT_FILES = (
    ("train_set.yaml", "train"),
    ("test_set_seen_cat.yaml", "unseen_obj"),
    ("test_set_unseen_cat.yaml", "unseen_cat"),
)
#: Folders, relative to ``root``, searched for the split files ("../cfg": root is the reference's dexgrasp/assets).
SPLIT_DIRS = (".", "cfg", "dexgrasp/cfg", "assets", "../cfg")
MESH_DIR = "meshdatav3_scaled"
GRASP_DIR = "datasetv4.1"
#: Relative tolerance when matching a grasp file's ``scale`` (= 1 / object scale) to an object's scale.
SCALE_TOLERANCE = 0.02
#: Grasp proposals kept per object (in file-name order).
MAX_PROPOSALS = 4
WRIST_EULER_KEYS = ("WRJRx", "WRJRy", "WRJRz")
WRIST_POS_KEYS = ("WRJTx", "WRJTy", "WRJTz")
#: The reference's wrist-root origin in our palm frame, metres (zero: assumed equal; see the module docstring).
REFERENCE_ROOT_IN_PALM = (0.0, 0.0, 0.0)


def import_dexgraspnet(
    root: Path,
    set_name: str = "dexgraspnet",
    max_parts: int = 8,
    limit: int | None = None,
    max_proposals: int = MAX_PROPOSALS,
    progress: Callable[[str, int, int], None] | None = None,
) -> ImportResult:
    """Import the objects of the three split files, with up to ``max_proposals`` grasps each.

    An object whose mesh is missing or broken is skipped with a reason; only a root without any split file is
    an error. Object ids are ``<code>@<scale>`` (the reference's own naming), whatever ``set_name``.

    :param root: the dataset folder (holding ``meshdatav3_scaled`` directly or under ``assets/``).
    :param set_name: name of the object set, used in messages.
    :param max_parts: most convex parts per object; pieces beyond it are merged (use the scene's hull_slots).
    :param limit: most objects imported per split file (for quick runs); ``None`` imports every listed pair.
    :param max_proposals: most grasp proposals kept per object.
    :param progress: called as ``progress("objects (<split>)", done, total)`` over each split file's entries.
    """
    root = Path(root)
    assets = dataset_dir(root)
    result = ImportResult()
    pieces_by_code: dict[str, list[np.ndarray] | Exception] = {}
    found_split = False
    for file_name, split in SPLIT_FILES:
        split_path = _find_split_file(root, file_name)
        if split_path is None:
            result.skipped.append((str(root / file_name), f"{set_name}: split file not found; no {split} objects"))
            continue
        found_split = True
        imported = 0
        pairs = read_split_file(split_path)
        stage = f"objects ({split})"
        for done, (code, scale) in enumerate(pairs):
            if progress:  # entries finished so far (reported here, since the body has several exits)
                progress(stage, done, len(pairs))
            if limit is not None and imported >= limit:
                break
            name = object_id(code, scale)
            if name in result.proposals:
                result.skipped.append((str(split_path), f"{name} is listed twice; kept the first"))
                continue
            try:
                pieces = _unit_pieces(assets, code, max_parts, pieces_by_code)
                obj, offset = _build_object(name, code, scale, split, pieces)
            except Exception as err:  # one missing or broken object must not stop the import of thousands
                result.skipped.append((str(mesh_path(assets, code)), f"{name}: {err}"))
                continue
            result.objects.append(obj)
            grasps = grasp_files(assets, code)
            result.proposals[name] = read_proposals(grasps, scale, offset, max_proposals, result.skipped)
            imported += 1
        if progress and pairs:  # also closes the bar of a split that --limit ended early
            progress(stage, len(pairs), len(pairs))
    if not found_split:
        raise FileNotFoundError(
            f"{root}: no DexGraspNet split file ({', '.join(n for n, _ in SPLIT_FILES)}) in {list(SPLIT_DIRS)}"
        )
    return result


def dataset_dir(root: Path) -> Path:
    """The folder holding ``meshdatav3_scaled``: ``root`` itself or its ``assets`` (or ``dexgrasp/assets``).

    :param root: what the user passed.
    """
    for candidate in (root, root / "assets", root / "dexgrasp" / "assets"):
        if (candidate / MESH_DIR).is_dir():
            return candidate
    return root  # every object will then be skipped with the mesh path it looked for


def object_id(code: str, scale: float) -> str:
    """The id of one (object, scale) pair, e.g. ``core/mug-928a@0.06``.

    :param code: DexGraspNet object code ``<src>/<name>``.
    :param scale: the object scale.
    """
    return f"{code}@{scale:g}"


def category_of(code: str) -> str:
    """Lower-case category of an object code: ``sem/PillBottle-6230f6`` -> ``pillbottle``.

    :param code: DexGraspNet object code ``<src>/<Category>-<hash>``.
    """
    name = code.rstrip("/").split("/")[-1]
    return name.rsplit("-", 1)[0].lower() if "-" in name else name.lower()


def mesh_path(assets: Path, code: str) -> Path:
    """Where the CoACD pieces of ``code`` live.

    :param assets: the dataset folder (see ``dataset_dir``).
    :param code: object code.
    """
    return assets / MESH_DIR / code / "coacd" / "decomposed.obj"


def grasp_files(assets: Path, code: str) -> list[Path]:
    """The grasp ``.npz`` files of ``code`` (every scale), sorted by name.

    Accepts ``datasetv4.1/<src>/<name>/`` (the reference layout), ``datasetv4.1/<name>/`` and a doubled
    ``datasetv4.1/<src>/<src>/<name>/``.

    :param assets: the dataset folder (see ``dataset_dir``).
    :param code: object code.
    """
    base = assets / GRASP_DIR
    name = code.split("/")[-1]
    source = code.split("/")[0] if "/" in code else ""
    folders = [base / code, base / name] + ([base / source / code] if source else [])
    found = {p for folder in folders if folder.is_dir() for p in folder.glob("*.npz")}
    return sorted(found, key=lambda p: (p.name, str(p)))


def read_split_file(path: Path) -> list[tuple[str, float]]:
    """(code, scale) pairs of a split yaml, in file order.

    Accepted forms: a mapping ``code: [scales]`` (or ``code: scale``); a list of ``[code, scale]``,
    ``[code, [scales]]``, ``{code: .., scale: ..}`` (or ``scales``) or one-key ``{code: [scales]}`` items; either
    list wrapped in a one-key mapping such as the reference's ``object_code_list:``. Raises ``ValueError`` naming
    the file and the offending item otherwise.

    :param path: the split yaml file.
    """
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read split file ({err})") from err
    if isinstance(raw, dict) and len(raw) == 1:
        (key, value), = raw.items()
        wraps_items = isinstance(value, list) and not all(isinstance(v, (int, float)) for v in value)
        if isinstance(key, str) and "/" not in key and wraps_items:
            raw = value  # a wrapper key such as object_code_list (codes hold a '/', and map to numbers)
    if isinstance(raw, dict):
        items: list[object] = [{code: scales} for code, scales in raw.items()]
    elif isinstance(raw, list):
        items = raw
    else:
        raise ValueError(f"{path}: a split file must be a list of (code, scale) items or a code -> scales mapping")
    pairs: list[tuple[str, float]] = []
    for index, item in enumerate(items):
        code, scales = _split_item(item, path, index)
        pairs.extend((code, s) for s in _scales(scales, path, index))
    return pairs


def read_obj_pieces(path: Path) -> list[np.ndarray]:
    """Vertex arrays of the pieces in a CoACD ``decomposed.obj``.

    Each ``o`` / ``g`` block with faces is one piece; a file without blocks is split into connected components.

    :param path: the OBJ file.
    """
    vertices: list[list[float]] = []
    groups: list[list[list[int]]] = [[]]
    with open(path) as handle:
        for line_no, line in enumerate(handle, 1):
            tokens = line.split()
            if not tokens:
                continue
            try:
                if tokens[0] == "v":
                    vertices.append([float(t) for t in tokens[1:4]])
                    if len(vertices[-1]) != 3:
                        raise ValueError("a vertex needs 3 coordinates")
                elif tokens[0] in ("o", "g") and groups[-1]:
                    groups.append([])
                elif tokens[0] == "f":
                    groups[-1].append([_obj_index(t, len(vertices)) for t in tokens[1:]])
            except ValueError as err:
                raise MeshImportError(f"{path}:{line_no}: malformed OBJ line ({err})") from err
    points = np.asarray(vertices, dtype=float).reshape(-1, 3)
    groups = [g for g in groups if g]
    if not groups:
        raise MeshImportError(f"{path}: no faces")
    if not np.all(np.isfinite(points)):
        raise MeshImportError(f"{path}: non-finite vertices")
    if any(i < 0 or i >= len(points) for g in groups for face in g for i in face):
        raise MeshImportError(f"{path}: a face refers to a vertex that does not exist")
    if len(groups) == 1:
        return [points[c] for c in _components(groups[0], len(points))]
    return [points[sorted({i for face in g for i in face})] for g in groups]


def read_proposals(
    files: list[Path],
    object_scale: float,
    offset: np.ndarray,
    max_count: int,
    skipped: list[tuple[str, str]],
) -> list[GraspProposal]:
    """Grasp proposals from the files made for ``object_scale`` (their ``scale`` is its inverse).

    :param files: grasp ``.npz`` files of one object code (any scale).
    :param object_scale: the object's scale.
    :param offset: the re-centring shift applied to the object's vertices (subtracted from hand points too).
    :param max_count: most proposals to return.
    :param skipped: where unreadable files are reported as (path, reason).
    """
    proposals: list[GraspProposal] = []
    for path in files:
        if len(proposals) >= max_count:
            break
        try:
            # The reference stores qpos as a pickled dict; the user chose to import this dataset.
            with np.load(path, allow_pickle=True) as data:
                file_scale = float(np.asarray(data["scale"]).reshape(-1)[0])
                if abs(file_scale * object_scale - 1.0) > SCALE_TOLERANCE:
                    continue  # a grasp for another scale of the same object
                qpos = _qpos_dict(data["qpos"])
            proposals.append(proposal_from_qpos(qpos, offset))
        except Exception as err:  # a broken grasp file costs one proposal, not the object
            skipped.append((str(path), f"{path}: unreadable grasp ({type(err).__name__}: {err})"))
    return proposals


def proposal_from_qpos(qpos: Mapping[str, float], offset: np.ndarray | None = None) -> GraspProposal:
    """Convert one DexGraspNet ``qpos`` dict (22 joints + wrist Euler xyz + wrist translation) to a proposal.

    :param qpos: the 28 named values; joints may carry the ``robot0:`` prefix or not.
    :param offset: subtracted from the hand point (the object's re-centring shift); zero when ``None``.
    """
    joints = np.array([_joint_value(qpos, name) for name in HAND_JOINTS])
    quat = euler_xyz_to_quat(*(float(qpos[k]) for k in WRIST_EULER_KEYS))
    translation = np.array([float(qpos[k]) for k in WRIST_POS_KEYS])
    root_to_point = np.asarray(HAND_POINT_IN_PALM) - np.asarray(REFERENCE_ROOT_IN_PALM)
    hand_point = translation + quat_to_mat(quat) @ root_to_point
    if offset is not None:
        hand_point = hand_point - np.asarray(offset, dtype=float)
    return GraspProposal(hand_point=hand_point, palm_quat=quat, hand_qpos=joints)


def euler_xyz_to_quat(rx: float, ry: float, rz: float) -> np.ndarray:
    """(w, x, y, z) of the rotation Rz(rz) Ry(ry) Rx(rx), IsaacGym's ``quat_from_euler_xyz`` convention.

    :param rx: roll about x, radians.
    :param ry: pitch about y, radians.
    :param rz: yaw about z, radians.
    """
    qx = np.array([math.cos(rx / 2), math.sin(rx / 2), 0.0, 0.0])
    qy = np.array([math.cos(ry / 2), 0.0, math.sin(ry / 2), 0.0])
    qz = np.array([math.cos(rz / 2), 0.0, 0.0, math.sin(rz / 2)])
    quat = multiply(qz, multiply(qy, qx))
    return quat if quat[0] >= 0 else -quat  # one canonical sign for the same rotation


def _unit_pieces(
    assets: Path, code: str, max_parts: int, memo: dict[str, list[np.ndarray] | Exception]
) -> list[np.ndarray]:
    # Pieces in normalised units, merged down to max_parts: shared by every scale of a code, so read once.
    # Merging before scaling is equivalent, since the merge choices compare volumes that all scale alike.
    if code not in memo:
        path = mesh_path(assets, code)
        try:
            if not path.is_file():
                raise MeshImportError(f"missing mesh {path}")
            pieces = merge_parts(read_obj_pieces(path), max_parts)
            if not pieces:
                raise MeshImportError(f"{path}: every piece is degenerate")
            memo[code] = pieces
        except Exception as err:
            memo[code] = err
    found = memo[code]
    if isinstance(found, Exception):
        raise found
    return found


def _build_object(
    name: str, code: str, scale: float, split: str, pieces: list[np.ndarray]
) -> tuple[ObjectSpec, np.ndarray]:
    scaled = [p * scale for p in pieces]
    stacked = np.concatenate(scaled)
    low, high = stacked.min(axis=0), stacked.max(axis=0)
    longest = float(np.max(high - low))
    if not HARD_SIDE_RANGE[0] <= longest <= HARD_SIDE_RANGE[1]:
        raise MeshImportError(f"longest side {longest:.4g} m at scale {scale:g} is outside {HARD_SIDE_RANGE} m")
    # decomposed.obj is centred on the original mesh's box, not exactly on its pieces' box: re-centre, and
    # hand the shift back so the grasp poses move with the vertices.
    offset = 0.5 * (low + high)
    parts = tuple(ConvexPart("hull", vertices=p - offset) for p in scaled)
    return ObjectSpec(name=name, parts=parts, category=category_of(code), split=split), offset


def _find_split_file(root: Path, file_name: str) -> Path | None:
    for folder in SPLIT_DIRS:
        candidate = root / folder / file_name
        if candidate.is_file():
            return candidate
    return None


def _split_item(item: object, path: Path, index: int) -> tuple[str, object]:
    if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str):
        return item[0], item[1]
    if isinstance(item, dict):
        if "code" in item:
            extra = sorted(set(item) - {"code", "scale", "scales"})
            if extra or ("scale" in item) == ("scales" in item):
                raise ValueError(f"{path}: item {index} needs 'code' and one of 'scale'/'scales', got {sorted(item)}")
            return _code(item["code"], path, index), item.get("scale", item.get("scales"))
        if len(item) == 1:
            (code, scales), = item.items()
            return _code(code, path, index), scales
    raise ValueError(f"{path}: item {index} is not a (code, scale) pair: {item!r}")


def _code(value: object, path: Path, index: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: item {index} has object code {value!r}, expected a '<src>/<name>' string")
    return value.strip()


def _scales(value: object, path: Path, index: int) -> list[float]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values:
        raise ValueError(f"{path}: item {index} lists no scale")
    scales = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{path}: item {index} has scale {v!r}, expected a positive number")
        scales.append(float(v))
    return scales


def _obj_index(token: str, count: int) -> int:
    # OBJ faces are "v", "v/vt", "v//vn" or "v/vt/vn", 1-based, negative meaning "counted from the end".
    index = int(token.split("/")[0])
    if index == 0:
        raise ValueError("vertex index 0")
    return index - 1 if index > 0 else count + index


def _components(faces: list[list[int]], num_vertices: int) -> list[np.ndarray]:
    # Vertices joined by faces form one piece; the first vertex of each face links to all its others.
    rows = [face[0] for face in faces for _ in face[1:]]
    cols = [v for face in faces for v in face[1:]]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(num_vertices, num_vertices))
    _, labels = connected_components(graph, directed=False)
    used = np.unique([v for face in faces for v in face])
    return [used[labels[used] == label] for label in np.unique(labels[used])]


def _joint_value(qpos: Mapping[str, float], joint: str) -> float:
    for key in (f"robot0:{joint}", joint):
        if key in qpos:
            return float(qpos[key])
    raise KeyError(f"qpos has no joint {joint!r} (nor 'robot0:{joint}')")


def _qpos_dict(value: object) -> Mapping[str, float]:
    # np.savez stores a dict as a 0-d object array; unwrap it.
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    if not isinstance(value, Mapping):
        raise ValueError(f"qpos is a {type(value).__name__}, expected a dict of 28 named values")
    return value
