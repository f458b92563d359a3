"""The object data layer under demanding use: loading never builds, concurrent writers, corrupted files, resumed
builds, the set checksum, and long imports that report progress and their whole time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import envs.objects.build as build_module
from envs.objects.build import build_object_set, import_object_set, store_import
from envs.objects.catalog import ObjectSet, ObjectSetNotBuilt, load_object_set
from envs.objects.embedded import embedded_objects
from envs.objects.importers.result import ImportResult
from envs.objects.store import ObjectStore

REPO = Path(__file__).resolve().parents[1]
SMALL = "embedded-small"


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESDEX_DATA": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "resdex_sb3.objects", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


# ---------------------------------------------------------------------------------------------- item 4
def test_building_an_env_on_a_data_dir_without_the_set_fails_in_one_line_and_builds_nothing(tmp_path):
    from resdex_sb3.env_builder import build_env

    with pytest.raises(ObjectSetNotBuilt) as err:
        build_env("ResDexBase", 1, 0, {"object_set": SMALL, "data_dir": str(tmp_path)})
    message = str(err.value)
    assert "\n" not in message
    assert f"python -m resdex_sb3.objects build --preset small --data-dir {tmp_path}" in message
    assert list(tmp_path.iterdir()) == []  # nothing built, not even a manifest or a lock file
    assert isinstance(err.value, ValueError)  # the commands' user-error handlers catch it

    # a set whose build was interrupted is refused too, naming the same command (which resumes it)
    ObjectStore(tmp_path).begin_set(SMALL, kind="embedded", preset="small", seed=2025)
    with pytest.raises(ObjectSetNotBuilt, match=r"only partly built.*build --preset small"):
        load_object_set(SMALL, tmp_path)
    with pytest.raises(ObjectSetNotBuilt, match=r"'mine' does not exist in .*; known sets: .*embedded-small"):
        load_object_set("mine", tmp_path)


def test_cli_names_a_missing_set_in_one_line(tmp_path):
    done = _cli("list", "--set", "mine", data_dir=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "'mine' does not exist" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------------- item 7
_WRITER = textwrap.dedent(
    """
    import sys, time
    from dataclasses import replace
    from pathlib import Path

    from envs.objects.build import build_object_set, store_import
    from envs.objects.embedded import embedded_objects
    from envs.objects.importers.result import ImportResult
    from envs.objects.store import ObjectStore

    data, role = Path(sys.argv[1]), sys.argv[2]
    (data.parent / f"ready-{role}").touch()
    while not (data.parent / "go").exists():  # both writers start together
        time.sleep(0.01)
    if role == "build":
        build_object_set("embedded-small", data, proposals=False)
    else:
        objects = [replace(o, name=f"good3/{o.name}") for o in embedded_objects("small")]
        store_import(ObjectStore(data), "good3", ImportResult(objects=objects), kind="meshes", source="/x",
                     proposals=False)
    """
)


def test_concurrent_build_and_import_both_stay_listed_and_valid(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [subprocess.Popen([sys.executable, "-c", _WRITER, str(data), role], cwd=REPO, env=env,
                                stderr=subprocess.PIPE, text=True) for role in ("build", "import")]  # fmt: skip
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"ready-{r}").exists() for r in ("build", "import")):
        assert time.monotonic() < deadline and all(w.poll() is None for w in writers), "a writer did not start"
        time.sleep(0.05)
    (tmp_path / "go").touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
    store = ObjectStore(data)
    assert {SMALL, "good3"} <= set(store.set_names())
    for name in (SMALL, "good3"):
        objset = load_object_set(name, data)  # every file listed and matching its checksum
        assert len(objset.objects) == len(objset.points) == 55


def test_manifest_updates_merge_with_what_another_writer_saved(tmp_path):
    # Two stores opened on one directory before either writes: the later writer keeps the earlier one's set.
    first, second = ObjectStore(tmp_path), ObjectStore(tmp_path)
    objects = embedded_objects("small")[:3]
    store_import(first, "one", ImportResult(objects=objects), kind="meshes", source="/a", proposals=False)
    store_import(second, "two", ImportResult(objects=objects), kind="meshes", source="/b", proposals=False)
    assert ObjectStore(tmp_path).set_names() == ["one", "two"]
    assert len(load_object_set("one", tmp_path).objects) == 3


# ---------------------------------------------------------------------------------------------- item 9
def test_build_repairs_a_changed_object_file_that_loading_refuses(tmp_path):
    build_object_set(SMALL, tmp_path, proposals=False)
    before = load_object_set(SMALL, tmp_path)
    store = ObjectStore(tmp_path)
    victim = before.objects[3].name
    path = tmp_path / store.set_info(SMALL)["objects"][victim]["file"]
    path.write_bytes(b"garbage")
    with pytest.raises(ObjectSetNotBuilt, match=r"checksum mismatch.*build --preset small"):
        load_object_set(SMALL, tmp_path)
    done = _cli("build", "--preset", "small", "--no-proposals", data_dir=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["repaired"] == 1 and summary["new_objects"] == 0
    after = load_object_set(SMALL, tmp_path)  # accepted again, same content, same order
    assert [o.name for o in after.objects] == [o.name for o in before.objects]
    np.testing.assert_array_equal(after.points[victim], before.points[victim])
    assert after.checksum == before.checksum == summary["checksum"]


def test_build_repairs_a_missing_file_and_a_damaged_proposal_file(tmp_path):
    build_object_set(SMALL, tmp_path, proposals=False)
    store = ObjectStore(tmp_path)
    victim = embedded_objects("small")[0].name
    (tmp_path / store.set_info(SMALL)["objects"][victim]["file"]).unlink()
    store.write_proposals(SMALL, {}, {"proposal_share": 0.0})
    store.proposals_path(SMALL).write_text("{}")
    with pytest.raises(ObjectSetNotBuilt, match="missing"):
        load_object_set(SMALL, tmp_path)
    summary = build_object_set(SMALL, tmp_path, proposals=False)
    assert summary["repaired"] == 1
    assert load_object_set(SMALL, tmp_path).proposals == {}  # the damaged record is gone, not trusted


def test_an_imported_set_that_cannot_be_rebuilt_names_its_import(tmp_path):
    objects = embedded_objects("small")[:2]
    store_import(ObjectStore(tmp_path), "mine", ImportResult(objects=objects), kind="meshes", source="/src",
                 proposals=False)  # fmt: skip
    assert build_object_set("mine", tmp_path)["repaired"] == 0  # complete and intact: verified only
    entry = ObjectStore(tmp_path).set_info("mine")["objects"][objects[0].name]
    (tmp_path / entry["file"]).write_bytes(b"garbage")
    with pytest.raises(ObjectSetNotBuilt, match=r"python -m resdex_sb3.objects import /src --name mine"):
        build_object_set("mine", tmp_path)
    with pytest.raises(ObjectSetNotBuilt, match="does not exist"):
        build_object_set("nope", tmp_path)


# ---------------------------------------------------------------------------------------------- item 10
def test_points_do_not_depend_on_which_objects_a_build_made_before(tmp_path, monkeypatch):
    build_object_set(SMALL, tmp_path / "full", proposals=False)
    real = build_module.sample_surface
    calls = []

    def killed_after_40(obj, *args, **kwargs):  # a build killed after its first manifest flush (32 objects)
        calls.append(obj.name)
        if len(calls) > 40:
            raise KeyboardInterrupt
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(build_module, "sample_surface", killed_after_40)
    with pytest.raises(KeyboardInterrupt):
        build_object_set(SMALL, tmp_path / "resumed", proposals=False)
    monkeypatch.setattr(build_module, "sample_surface", real)
    assert 0 < len(ObjectStore(tmp_path / "resumed").set_info(SMALL)["objects"]) < 55
    summary = build_object_set(SMALL, tmp_path / "resumed", proposals=False)
    assert 0 < summary["new_objects"] < 55
    full, resumed = load_object_set(SMALL, tmp_path / "full"), load_object_set(SMALL, tmp_path / "resumed")
    assert [o.name for o in resumed.objects] == [o.name for o in full.objects]
    for name, points in full.points.items():
        np.testing.assert_array_equal(resumed.points[name], points, err_msg=name)
    assert resumed.checksum == full.checksum


# ---------------------------------------------------------------------------------------------- item 11
def test_checksum_follows_content_only(tmp_path):
    build_object_set(SMALL, tmp_path, proposals=False)
    objset = load_object_set(SMALL, tmp_path)
    checksum = objset.checksum
    assert len(checksum) == 64 and int(checksum, 16) >= 0
    shuffled = ObjectSet(SMALL, objset.objects[::-1], dict(objset.points), report={"sampling_seconds": 9.0})
    assert shuffled.checksum == checksum  # order and timings are not content
    moved = {**objset.points, objset.objects[0].name: objset.points[objset.objects[0].name] + np.float32(1e-4)}
    assert ObjectSet(SMALL, objset.objects, moved).checksum != checksum
    from envs.proposals import GraspProposal

    with_proposal = ObjectSet(SMALL, objset.objects, objset.points,
                              {objset.objects[0].name: [GraspProposal(np.zeros(3), np.array([1.0, 0, 0, 0]),
                                                                      np.zeros(22))]})  # fmt: skip
    assert with_proposal.checksum != checksum
    listed = _cli("list", "--set", SMALL, data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"checksum {checksum}" in listed.stdout


# ---------------------------------------------------------------------------------------------- item 13
def _l_shape(trimesh, size: float):
    """Two boxes in an L: not convex, so the import sends it through the (here faked) decomposition."""
    upright = trimesh.creation.box((0.2 * size, 0.2 * size, size))
    foot = trimesh.creation.box((size, 0.2 * size, 0.2 * size))
    foot.apply_translation((0.4 * size, 0.0, -0.4 * size))
    return trimesh.util.concatenate([upright, foot])


def test_import_reports_its_whole_time_progress_and_rescales(tmp_path, monkeypatch):
    trimesh = pytest.importorskip("trimesh")
    from envs.objects.importers import decompose

    meshes = tmp_path / "meshes"
    meshes.mkdir()
    _l_shape(trimesh, 0.1).export(meshes / "ell.obj")
    _l_shape(trimesh, 0.12).export(meshes / "ell_big.obj")
    trimesh.creation.box((0.04, 0.03, 0.02)).export(meshes / "small_box.stl")  # 4 cm: rescaled to 5 cm
    now = [0.0]
    decompositions = []

    def slow_coacd(mesh, max_parts):  # the decomposition is where a real import spends its minutes
        decompositions.append(mesh)
        now[0] += 100.0
        return [np.asarray(mesh.convex_hull.vertices)]

    monkeypatch.setattr(decompose, "_run_coacd", slow_coacd)
    reports, lines = [], []
    summary = import_object_set(meshes, "holdout", tmp_path / "data", proposals=False, clock=lambda: now[0],
                                progress=lambda *r: reports.append(r), log=lines.append)  # fmt: skip
    assert len(decompositions) == 2
    assert summary["seconds"] == summary["read_seconds"] == 200.0  # the decomposition's time is counted
    assert ("meshes", 0, 3) in reports and ("meshes", 3, 3) in reports
    assert ("points", 3, 3) in reports
    assert any("holdout/small_box" in k for k in summary["rescaled"])
    assert [line for line in lines if "4 cm mesh rescaled to 5 cm" in line]


def test_show_takes_the_ids_that_list_json_prints(tmp_path):
    from resdex_sb3.objects import find_object

    objects = embedded_objects("small")[:2]
    mine = [replace(o, name=f"holdout/{o.name}") for o in objects]
    store_import(ObjectStore(tmp_path), "holdout", ImportResult(objects=mine), kind="meshes", source="/h",
                 proposals=False)  # fmt: skip
    assert find_object("holdout/" + objects[0].name, None, str(tmp_path)) == "holdout"
    assert find_object(objects[0].name, None, str(tmp_path)) == "embedded"  # an unbuilt preset's object
    assert find_object(objects[0].name, "holdout", str(tmp_path)) == "holdout"  # --set wins
    rows = json.loads(_cli("list", "--json", "--set", "holdout", data_dir=tmp_path).stdout)
    shown = _cli("show", rows[1]["id"], "--image", str(tmp_path / "x.png"), data_dir=tmp_path)  # no --set
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{rows[1]['id']}  set=holdout")
    assert f"set holdout: checksum {load_object_set('holdout', tmp_path).checksum}" in shown.stdout
    store_import(ObjectStore(tmp_path), "other", ImportResult(objects=mine), kind="meshes", source="/o",
                 proposals=False)  # fmt: skip
    with pytest.raises(KeyError, match="several sets.*pass --set"):
        find_object("holdout/" + objects[0].name, None, str(tmp_path))
    with pytest.raises(KeyError, match="no object set"):
        find_object("nothing/here", None, str(tmp_path))


def test_building_a_complete_intact_set_samples_and_writes_nothing(tmp_path, monkeypatch):
    build_object_set(SMALL, tmp_path, proposals=False)
    store = ObjectStore(tmp_path)
    names = [o.name for o in embedded_objects("small")]
    store.write_proposals(SMALL, {}, {"proposal_share": 0.0, "attempted": names})  # as if every object was tried
    store.mark_complete(SMALL, proposal_share=0.0)  # as a build with proposals leaves it
    manifest = (tmp_path / "manifest.json").read_bytes()
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file() and p.name != "manifest.lock"}

    def no_sampling(*args, **kwargs):
        raise AssertionError("a complete set was sampled again")

    monkeypatch.setattr(build_module, "sample_proposals", no_sampling)
    summary = build_object_set(SMALL, tmp_path, proposals=True)
    assert summary["new_objects"] == summary["repaired"] == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (tmp_path / "manifest.json").read_bytes() == manifest
