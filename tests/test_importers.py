"""Mesh-folder and DexGraspNet importers: validation, decomposition cache, proposals, and simulation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import trimesh

from envs.config import SceneConfig
from envs.objects.importers import decompose
from envs.objects.importers.dexgraspnet import (
    euler_xyz_to_quat,
    import_dexgraspnet,
    read_obj_pieces,
    read_split_file,
)
from envs.objects.importers.mesh_checks import SIDE_RANGE, MeshImportError, load_mesh
from envs.objects.importers.mesh_folder import import_mesh_folder
from envs.objects.spec import ObjectSpec, object_bounds, quat_to_mat
from envs.scene import HAND_JOINTS, HAND_POINT_IN_PALM, Scene
from envs.sim import BatchedSim

MAX_PARTS = 8


# ---------------------------------------------------------------------------------------------- mesh writers


def _box(extents: tuple[float, float, float], centre: tuple[float, float, float] = (0, 0, 0)) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(centre)
    return mesh


def _l_prism(arm: float = 0.06, width: float = 0.02, height: float = 0.03) -> trimesh.Trimesh:
    """An L-shaped prism: watertight, clearly non-convex (60 % of its hull), two natural convex pieces."""
    outline = np.array([(0, 0), (arm, 0), (arm, width), (width, width), (width, arm), (0, arm)], dtype=float)
    n = len(outline)
    vertices = np.concatenate([np.c_[outline, np.zeros(n)], np.c_[outline, np.full(n, height)]])
    faces = []
    for i in range(1, n - 1):  # the L is star-shaped around its corner vertex 0, so a fan triangulates it
        faces += [[0, i + 1, i], [n, n + i, n + i + 1]]
    for i in range(n):
        j = (i + 1) % n
        faces += [[i, j, n + j], [i, n + j, n + i]]
    mesh = trimesh.Trimesh(vertices, faces)
    mesh.fix_normals()
    return mesh


def _write_good_and_bad(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    _box((0.06, 0.04, 0.03), centre=(0.5, -0.2, 0.1)).export(folder / "box.obj")  # off-centre on purpose
    trimesh.creation.cylinder(radius=0.03, height=0.1, sections=24).export(folder / "can.stl")
    _l_prism().export(folder / "bracket.ply")
    _box((0.4, 0.1, 0.1)).export(folder / "big_box.obj")  # inside the hard limits: rescaled to 0.25 m
    (folder / "mugs").mkdir(exist_ok=True)
    _box((0.03, 0.02, 0.02)).export(folder / "mugs" / "tiny.obj")  # rescaled up to 0.05 m
    (folder / "garbage.obj").write_bytes(b"this is not a mesh\n\x00\x01\x02 v f 1 2\n")
    (folder / "empty.stl").write_bytes(b"")
    flat = trimesh.Trimesh([[0, 0, 0], [0.1, 0, 0], [0.1, 0.1, 0], [0, 0.1, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    flat.export(folder / "flat.obj")
    _box((10.0, 2.0, 2.0)).export(folder / "huge.obj")
    (folder / "notes.txt").write_text("not a mesh; ignored")
    (folder / "manifest.yaml").write_text(
        "objects:\n"
        "  - {file: box.obj, category: crate, split: unseen_cat}\n"
        "  - {file: can.stl, name: soda, category: can, split: unseen_obj, density: 300}\n"
        "  - {file: bracket.ply, category: bracket}\n"
    )


@pytest.fixture(scope="module")
def folder_import(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("meshes")
    _write_good_and_bad(folder)
    result = import_mesh_folder(folder, "user", max_parts=MAX_PARTS, cache_dir=folder.parent / "cache")
    return folder, result


def _longest_side(obj: ObjectSpec) -> float:
    low, high = object_bounds(obj)
    return float(np.max(high - low))


# ---------------------------------------------------------------------------------------------- mesh folder


def test_folder_imports_good_files_with_manifest_settings(folder_import) -> None:
    _, result = folder_import
    by_name = {o.name: o for o in result.objects}
    assert set(by_name) == {"user/box", "user/soda", "user/bracket", "user/big_box", "user/tiny"}
    expected = {  # name: (category, split, density)
        "user/box": ("crate", "unseen_cat", 500.0),
        "user/soda": ("can", "unseen_obj", 300.0),
        "user/bracket": ("bracket", "train", 500.0),
        "user/big_box": ("big", "train", 500.0),  # no manifest entry: leading letters of the file name
        "user/tiny": ("mugs", "train", 500.0),  # no manifest entry, in a sub-folder: the folder's name
    }
    for name, (category, split, density) in expected.items():
        obj = by_name[name]
        assert (obj.category, obj.split, obj.density) == (category, split, density), name
        assert all(p.kind == "hull" and p.pos == (0.0, 0.0, 0.0) for p in obj.parts)
        assert 1 <= obj.num_hulls <= MAX_PARTS
        low, high = object_bounds(obj)
        np.testing.assert_allclose(low, -high, atol=1e-9, err_msg=f"{name} is not centred on its bounding box")
        assert SIDE_RANGE[0] - 1e-9 <= _longest_side(obj) <= SIDE_RANGE[1] + 1e-9, name
    np.testing.assert_allclose(object_bounds(by_name["user/box"])[1], [0.03, 0.02, 0.015], atol=1e-9)
    assert _longest_side(by_name["user/big_box"]) == pytest.approx(0.25)
    assert _longest_side(by_name["user/tiny"]) == pytest.approx(0.05)
    assert result.scales["user/big_box"] == pytest.approx(0.25 / 0.4)
    assert result.scales["user/tiny"] == pytest.approx(0.05 / 0.03)
    assert result.scales["user/box"] == 1.0
    assert by_name["user/bracket"].num_hulls >= 2, "the L shape should be decomposed, not replaced by its hull"
    assert by_name["user/box"].num_hulls == 1 and by_name["user/soda"].num_hulls == 1  # convex: no CoACD


def test_folder_reports_bad_files_by_name(folder_import) -> None:
    folder, result = folder_import
    skipped = {Path(path).name: reason for path, reason in result.skipped}
    assert set(skipped) == {"garbage.obj", "empty.stl", "flat.obj", "huge.obj"}
    for name, reason in skipped.items():
        assert name in reason
    assert "volume" in skipped["flat.obj"]
    assert "far too big" in skipped["huge.obj"] and "--scale" in skipped["huge.obj"]
    assert "empty" in skipped["empty.stl"] or "cannot load" in skipped["empty.stl"]


def test_load_mesh_rejects_unknown_extension_and_nan(tmp_path: Path) -> None:
    (tmp_path / "model.fbx").write_text("x")
    with pytest.raises(MeshImportError, match="model.fbx"):
        load_mesh(tmp_path / "model.fbx")
    (tmp_path / "nan.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 nan 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    with pytest.raises(MeshImportError, match="nan.obj.*non-finite"):
        load_mesh(tmp_path / "nan.obj")


@pytest.mark.parametrize("manifest_name", ["manifest.yaml", "manifest.json"])
def test_manifest_unknown_field_names_field_and_file(tmp_path: Path, manifest_name: str) -> None:
    _box((0.05, 0.05, 0.05)).export(tmp_path / "cube.obj")
    manifest = {"objects": [{"file": "cube.obj", "colour": "red"}]}
    text = json.dumps(manifest) if manifest_name.endswith(".json") else "objects:\n  - {file: cube.obj, colour: red}\n"
    (tmp_path / manifest_name).write_text(text)
    with pytest.raises(ValueError, match=rf"{manifest_name}.*colour"):
        import_mesh_folder(tmp_path, "user")


def test_manifest_rejects_unknown_top_key_and_missing_file(tmp_path: Path) -> None:
    _box((0.05, 0.05, 0.05)).export(tmp_path / "cube.obj")
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text("objects: []\ndefaults: {density: 3}\n")
    with pytest.raises(ValueError, match="manifest.yaml.*defaults"):
        import_mesh_folder(tmp_path, "user")
    manifest.write_text("objects:\n  - {file: ghost.obj}\n")
    with pytest.raises(ValueError, match="manifest.yaml.*ghost.obj"):
        import_mesh_folder(tmp_path, "user")


def test_unseen_fraction_is_deterministic(tmp_path: Path) -> None:
    for i in range(6):
        _box((0.05, 0.06 + 0.01 * i, 0.05)).export(tmp_path / f"block{i}.stl")
    first = import_mesh_folder(tmp_path, "user", unseen_fraction=0.5)
    second = import_mesh_folder(tmp_path, "user", unseen_fraction=0.5)
    assert [o.split for o in first.objects] == [o.split for o in second.objects]
    assert {o.split for o in import_mesh_folder(tmp_path, "user", unseen_fraction=1.0).objects} == {"unseen_obj"}
    assert {o.split for o in import_mesh_folder(tmp_path, "user").objects} == {"train"}


# ---------------------------------------------------------------------------------------------- decomposition


def test_coacd_cache_is_reused_and_survives_corruption(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder, cache = tmp_path / "meshes", tmp_path / "cache"
    folder.mkdir()
    _l_prism().export(folder / "bracket.ply")
    calls: list[int] = []
    real_run = decompose._run_coacd

    def counting_run(mesh: trimesh.Trimesh, max_parts: int) -> list[np.ndarray]:
        calls.append(max_parts)
        return real_run(mesh, max_parts)

    monkeypatch.setattr(decompose, "_run_coacd", counting_run)
    first = import_mesh_folder(folder, "user", cache_dir=cache)
    files = sorted(cache.iterdir())
    assert len(calls) == 1 and len(files) == 1 and files[0].suffix == ".npz"
    second = import_mesh_folder(folder, "user", cache_dir=cache)
    assert len(calls) == 1, "the second import should read the cache, not run CoACD"
    assert sorted(cache.iterdir()) == files
    for a, b in zip(first.objects[0].parts, second.objects[0].parts):
        np.testing.assert_array_equal(a.vertices, b.vertices)
    files[0].write_bytes(b"half-written garbage")  # a damaged cache entry is ignored and rewritten
    third = import_mesh_folder(folder, "user", cache_dir=cache)
    assert len(calls) == 2 and third.objects[0].num_hulls == first.objects[0].num_hulls
    assert decompose.read_cached_parts(files[0]) is not None
    assert sorted(cache.iterdir()) == files, "no temporary files may be left behind"


def test_merge_parts_joins_smallest_piece_into_best_fitting_neighbour() -> None:
    big = _box((0.04, 0.04, 0.04)).vertices
    near = _box((0.04, 0.04, 0.01), centre=(0.0, 0.0, 0.025)).vertices  # sits on top of big
    far = _box((0.01, 0.01, 0.01), centre=(0.2, 0.0, 0.0)).vertices  # smallest, far from the others
    small_near = _box((0.005, 0.04, 0.04), centre=(0.0225, 0.0, 0.0)).vertices  # smallest, flush with big
    merged = decompose.merge_parts([big, near, small_near], max_parts=2)
    assert len(merged) == 2
    extents = sorted(float(np.ptp(p[:, 0])) for p in merged)
    assert extents == pytest.approx([0.04, 0.045])  # small_near went into big, not into near
    assert len(decompose.merge_parts([big, far], max_parts=1)) == 1
    assert len(decompose.merge_parts([big, near, far], max_parts=8)) == 3


# ---------------------------------------------------------------------------------------------- DexGraspNet

# Two pieces in normalised units whose union's box is centred at (0.05, 0, -0.1), not at the origin.
_DGN_PIECES = (((-0.6, -0.3, -0.5), (0.4, 0.3, 0.3)), ((0.4, -0.1, -0.2), (0.7, 0.1, 0.2)))
_DGN_CENTRE = np.array([0.05, 0.0, -0.1])
_DGN_EXTENT = 1.3  # longest side of the union, normalised units
_WRIST_EULER = (0.0, 0.0, math.pi / 2)
_WRIST_POS = (0.1, -0.05, 0.2)


def _obj_boxes(pieces, with_objects: bool) -> str:
    lines, base = [], 0
    for k, (low, high) in enumerate(pieces):
        box = _box(tuple(np.subtract(high, low)), tuple(np.add(low, high) / 2))
        if with_objects:
            lines.append(f"o convex_{k}")
        lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in box.vertices]
        lines += [f"f {a + base + 1} {b + base + 1} {c + base + 1}" for a, b, c in box.faces]
        base += len(box.vertices)
    return "\n".join(lines) + "\n"


def _grasp_qpos() -> dict[str, float]:
    joints = {f"robot0:{name}": 0.01 * (i + 1) for i, name in enumerate(HAND_JOINTS)}
    qpos = dict(reversed(list(joints.items())))  # stored out of order: conversion must go by name
    qpos.update(zip(("WRJRx", "WRJRy", "WRJRz"), _WRIST_EULER))
    qpos.update(zip(("WRJTx", "WRJTy", "WRJTz"), _WRIST_POS))
    return qpos


def _write_grasp(path: Path, object_scale: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, qpos=np.array(_grasp_qpos(), dtype=object), scale=np.float64(1.0 / object_scale),
                 plane=np.array([0.0, 0.0, 1.0, 0.05]))  # fmt: skip


@pytest.fixture(scope="module")
def dgn_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dgn")
    meshes = root / "assets" / "meshdatav3_scaled"
    for code, with_objects in (("core/mug-aaa1", True), ("sem/PillBottle-bbb2", False),
                               ("core/mug-ccc3", True), ("sem/Camera-ddd4", True)):  # fmt: skip
        target = meshes / code / "coacd" / "decomposed.obj"
        target.parent.mkdir(parents=True)
        target.write_text(_obj_boxes(_DGN_PIECES, with_objects))
    # sem/Camera-eee5 is listed but has no mesh folder at all
    (root / "assets" / "train_set.yaml").write_text(
        "object_code_list:\n-     core/mug-aaa1: [0.06, 0.08]\n-     sem/PillBottle-bbb2: [0.1]\n"
    )
    (root / "assets" / "test_set_seen_cat.yaml").write_text("- [core/mug-ccc3, 0.06]\n")
    (root / "assets" / "test_set_unseen_cat.yaml").write_text(
        "- {code: sem/Camera-ddd4, scale: 0.12}\n- {code: sem/Camera-eee5, scale: 0.06}\n"
    )
    grasps = root / "assets" / "datasetv4.1"
    _write_grasp(grasps / "core" / "mug-aaa1" / "00000.npz", 0.06)
    _write_grasp(grasps / "core" / "mug-aaa1" / "00001.npz", 0.08)
    _write_grasp(grasps / "PillBottle-bbb2" / "00000.npz", 0.1)  # a layout variant without the source folder
    return root


def test_dexgraspnet_splits_categories_ids_and_sizes(dgn_root: Path) -> None:
    result = import_dexgraspnet(dgn_root / "assets", max_parts=MAX_PARTS)
    by_name = {o.name: o for o in result.objects}
    expected = {  # id: (split, category, scale)
        "core/mug-aaa1@0.06": ("train", "mug", 0.06),
        "core/mug-aaa1@0.08": ("train", "mug", 0.08),
        "sem/PillBottle-bbb2@0.1": ("train", "pillbottle", 0.1),
        "core/mug-ccc3@0.06": ("unseen_obj", "mug", 0.06),
        "sem/Camera-ddd4@0.12": ("unseen_cat", "camera", 0.12),
    }
    assert set(by_name) == set(expected)
    for name, (split, category, scale) in expected.items():
        obj = by_name[name]
        assert (obj.split, obj.category, obj.num_hulls) == (split, category, 2), name
        low, high = object_bounds(obj)
        np.testing.assert_allclose(low, -high, atol=1e-9)
        assert _longest_side(obj) == pytest.approx(_DGN_EXTENT * scale)
    assert [Path(p).parts[-3] for p, _ in result.skipped] == ["Camera-eee5"]
    assert "sem/Camera-eee5@0.06" in result.skipped[0][1] and "missing" in result.skipped[0][1]


def test_dexgraspnet_proposals_follow_scale_joint_order_and_frame(dgn_root: Path) -> None:
    result = import_dexgraspnet(dgn_root)  # the parent of assets/ works too
    counts = {name: len(p) for name, p in result.proposals.items()}
    assert counts == {"core/mug-aaa1@0.06": 1, "core/mug-aaa1@0.08": 1, "sem/PillBottle-bbb2@0.1": 1,
                      "core/mug-ccc3@0.06": 0, "sem/Camera-ddd4@0.12": 0}  # fmt: skip
    for name, scale in (("core/mug-aaa1@0.06", 0.06), ("core/mug-aaa1@0.08", 0.08)):
        proposal = result.proposals[name][0]
        np.testing.assert_allclose(proposal.hand_qpos, 0.01 * np.arange(1, 23))  # HAND_JOINTS order
        np.testing.assert_allclose(proposal.palm_quat, [math.sqrt(0.5), 0.0, 0.0, math.sqrt(0.5)], atol=1e-12)
        # yaw +90 deg maps the palm offset (0, -0.02, 0.08) to (0.02, 0, 0.08); the object was shifted by its centre
        expected = np.array(_WRIST_POS) + np.array([0.02, 0.0, 0.08]) - _DGN_CENTRE * scale
        np.testing.assert_allclose(proposal.hand_point, expected, atol=1e-12)
    assert HAND_POINT_IN_PALM == (0.0, -0.02, 0.08)


def test_dexgraspnet_limit_and_merge(dgn_root: Path) -> None:
    result = import_dexgraspnet(dgn_root / "assets", max_parts=1, limit=1)
    assert [o.name for o in result.objects] == ["core/mug-aaa1@0.06", "core/mug-ccc3@0.06", "sem/Camera-ddd4@0.12"]
    assert all(o.num_hulls == 1 for o in result.objects)
    assert _longest_side(result.objects[0]) == pytest.approx(_DGN_EXTENT * 0.06)


def test_euler_matches_rz_ry_rx() -> None:
    rx, ry, rz = 0.3, -1.1, 2.5
    c, s = math.cos, math.sin
    x = np.array([[1, 0, 0], [0, c(rx), -s(rx)], [0, s(rx), c(rx)]])
    y = np.array([[c(ry), 0, s(ry)], [0, 1, 0], [-s(ry), 0, c(ry)]])
    z = np.array([[c(rz), -s(rz), 0], [s(rz), c(rz), 0], [0, 0, 1]])
    np.testing.assert_allclose(quat_to_mat(euler_xyz_to_quat(rx, ry, rz)), z @ y @ x, atol=1e-12)


def test_split_file_forms_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "train_set.yaml"
    path.write_text("core/mug-a: [0.06, 0.1]\nsem/Bowl-b: 0.08\n")
    assert read_split_file(path) == [("core/mug-a", 0.06), ("core/mug-a", 0.1), ("sem/Bowl-b", 0.08)]
    path.write_text("- {code: core/mug-a, scales: [0.06]}\n- [sem/Bowl-b, [0.08, 0.12]]\n")
    assert read_split_file(path) == [("core/mug-a", 0.06), ("sem/Bowl-b", 0.08), ("sem/Bowl-b", 0.12)]
    for bad in ("- 42\n", "- [core/mug-a, big]\n", "- {code: core/mug-a}\n", "just text\n", "- [core/mug-a, -1]\n"):
        path.write_text(bad)
        with pytest.raises(ValueError, match="train_set.yaml"):
            read_split_file(path)


def test_obj_pieces_by_object_or_component(tmp_path: Path) -> None:
    for with_objects in (True, False):
        path = tmp_path / f"pieces_{with_objects}.obj"
        path.write_text(_obj_boxes(_DGN_PIECES, with_objects))
        pieces = read_obj_pieces(path)
        assert [len(p) for p in pieces] == [8, 8]
        np.testing.assert_allclose(pieces[1].max(axis=0), _DGN_PIECES[1][1], atol=1e-6)


# ---------------------------------------------------------------------------------------------- simulation


def test_imported_objects_of_different_shapes_step_in_one_batch(folder_import, dgn_root: Path) -> None:
    _, folder_result = folder_import
    dgn = import_dexgraspnet(dgn_root / "assets", max_parts=MAX_PARTS)
    objects = folder_result.objects + dgn.objects
    assert len({o.num_hulls for o in objects}) > 1, "the batch should mix different hull counts"
    scene = Scene(SceneConfig(hull_slots=MAX_PARTS))
    sim = BatchedSim(scene, objects, num_threads=2)
    layout, top = scene.layout, scene.config.table_height
    qpos = np.tile(scene.model.qpos0, (len(objects), 1))
    qpos[:, layout.root_qpos[2]] = 0.3  # lift the hand clear of the tallest object
    rest = np.array([scene.rest_height(o) for o in objects])
    qpos[:, layout.object_qpos + 2] = top + rest + 0.002
    sim.reset(np.arange(len(objects)), qpos)
    failed = np.zeros(len(objects), dtype=bool)
    for _ in range(60):  # 1 s of simulated time
        failed |= sim.step(scene.config.substeps)
    assert not failed.any(), [o.name for o, f in zip(objects, failed) if f]
    assert np.isfinite(sim.qpos).all() and np.isfinite(sim.qvel).all()
    heights = sim.qpos[:, layout.object_qpos + 2] - top
    # resting on the table: neither fallen through nor launched (an object may settle onto another face)
    assert np.all(heights > 0.0) and np.all(heights < rest + 0.01), heights - rest
