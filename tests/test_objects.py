"""The embedded object set, surface points, the data directory and the objects CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from envs.config import SceneConfig
from envs.objects.build import build_embedded
from envs.objects.categories import CATEGORIES
from envs.objects.embedded import MAX_SIZE, MIN_SIZE, PRESETS, embedded_objects
from envs.objects.serialize import object_from_dict, object_to_dict
from envs.objects.spec import object_bounds
from envs.objects.store import ObjectStore
from envs.objects.surface import sample_surface
from envs.scene import Scene
from envs.sim import BatchedSim

REPO = Path(__file__).resolve().parents[1]


def test_embedded_set_is_deterministic_categorised_and_sized():
    a, b = embedded_objects("small"), embedded_objects("small")
    assert [object_to_dict(o) for o in a] == [object_to_dict(o) for o in b]
    assert len(CATEGORIES) >= 16
    held_out = {c.name for c in CATEGORIES if c.held_out}
    assert len(held_out) >= 4
    splits = Counter(o.split for o in a)
    assert set(splits) == {"train", "unseen_obj", "unseen_cat"}
    assert {o.category for o in a if o.split == "unseen_cat"} == held_out
    assert not held_out & {o.category for o in a if o.split != "unseen_cat"}
    names = [o.name for o in a]
    assert len(set(names)) == len(names)
    for obj in a:
        low, high = object_bounds(obj)
        assert MIN_SIZE <= float(np.max(high - low)) <= MAX_SIZE
        np.testing.assert_allclose(low + high, 0.0, atol=1e-9)  # origin at the bounding-box centre
    # unseen objects of seen categories are new instances, not copies of training ones
    train_shapes = {json.dumps(object_to_dict(o)["parts"]) for o in a if o.split == "train"}
    assert not any(json.dumps(object_to_dict(o)["parts"]) in train_shapes for o in a if o.split == "unseen_obj")
    assert len(embedded_objects("large")) >= 1000 and PRESETS["default"].train > PRESETS["small"].train


def test_whole_small_set_shares_one_batch_and_steps():
    objects = embedded_objects("small")
    sim = BatchedSim(Scene(SceneConfig()), objects, num_threads=1)
    for _ in range(30):
        assert not sim.step(2).any()
    z = sim.sensordata[:, Scene(SceneConfig()).layout.sensor["object_pos"]][:, 2]
    assert np.all(np.isfinite(z)) and np.all(z > 0.55)


def test_surface_points_lie_on_the_outer_surface():
    obj = next(o for o in embedded_objects("small") if o.category == "mug")
    points = sample_surface(obj, 4096, seed=0)
    assert points.shape == (4096, 3) and points.dtype == np.float32
    np.testing.assert_array_equal(points, sample_surface(obj, 4096, seed=0))
    low, high = object_bounds(obj)
    assert np.all(points >= low - 1e-6) and np.all(points <= high + 1e-6)
    body = obj.parts[0]  # the mug's cylinder: no point may be buried inside it
    local = points - np.asarray(body.pos)
    radial = np.hypot(local[:, 0], local[:, 1])
    inside = (radial < body.size[0] - 1e-3) & (np.abs(local[:, 2]) < body.size[1] - 1e-3)
    assert not inside.any()


def test_serialisation_round_trip_and_unknown_field(tmp_path):
    obj = embedded_objects("small")[0]
    assert object_to_dict(object_from_dict(object_to_dict(obj), "x")) == object_to_dict(obj)
    bad = {**object_to_dict(obj), "colour": "red"}
    with pytest.raises(ValueError, match="colour"):
        object_from_dict(bad, "bad.json")


def test_store_build_resumes_and_detects_corruption(tmp_path):
    store = ObjectStore(tmp_path)
    store.begin_set("embedded-small", kind="embedded", preset="small", seed=2025)
    objects = embedded_objects("small")
    # an interrupted build: only the first 5 objects made it
    store.add_objects("embedded-small", [(o, sample_surface(o), {}) for o in objects[:5]])
    summary = build_embedded(ObjectStore(tmp_path), "small", proposals=False)
    assert summary["new_objects"] == len(objects) - 5
    reread = ObjectStore(tmp_path)
    assert [o.name for o in reread.objects("embedded-small")] == [o.name for o in objects]
    assert reread.set_info("embedded-small")["complete"]
    assert not list(tmp_path.rglob("*.tmp"))
    # a changed file is refused, naming it
    entry = reread.set_info("embedded-small")["objects"][objects[0].name]
    (tmp_path / entry["file"]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match="checksum"):
        ObjectStore(tmp_path).objects("embedded-small")
    # rebuilding the same set with other settings is refused
    with pytest.raises(ValueError, match="built with"):
        ObjectStore(tmp_path).begin_set("embedded-small", kind="embedded", preset="small", seed=7)


def test_bad_manifest_is_named(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="manifest.json"):
        ObjectStore(tmp_path)


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESDEX_DATA": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "resdex_sb3.objects", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def test_cli_list_on_a_fresh_data_dir(tmp_path):
    text = _cli("list", data_dir=tmp_path)
    assert text.returncode == 0, text.stderr
    for split in ("train", "unseen_obj", "unseen_cat"):
        assert split in text.stdout
    rows = json.loads(_cli("list", "--json", data_dir=tmp_path).stdout)
    assert {"id", "set", "split", "category"} <= set(rows[0])
    assert {r["split"] for r in rows} == {"train", "unseen_obj", "unseen_cat"}
    assert not (tmp_path / "manifest.json").exists()  # listing builds nothing


def test_cli_import_mesh_folder_end_to_end(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    trimesh.creation.box((0.06, 0.04, 0.1)).export(meshes / "tall_box.stl")
    trimesh.creation.cylinder(0.03, 0.08).export(meshes / "can.obj")
    (meshes / "broken.obj").write_text("this is not a mesh")
    data = tmp_path / "data"
    done = _cli("import", str(meshes), "--name", "mine", "--no-proposals", data_dir=data)
    assert done.returncode == 0, done.stderr
    assert "broken.obj" in done.stderr
    rows = [r for r in json.loads(_cli("list", "--json", "--set", "mine", data_dir=data).stdout)]
    assert sorted(r["id"] for r in rows) == ["mine/can", "mine/tall_box"]
    from envs.objects.catalog import load_object_set

    objset = load_object_set("mine", data)
    sim = BatchedSim(Scene(objset.scene_config), objset.objects * 2, num_threads=1)
    for _ in range(30):
        assert not sim.step(2).any()
