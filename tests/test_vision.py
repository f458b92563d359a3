"""ResDexVision: observation layout and frames, the two cloud modes, the student, the expert and DAgger end to end."""

from __future__ import annotations

import json

import mujoco
import mujoco.batch
import numpy as np
import pytest
import torch as th
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from envs import quaternions as quat
from envs.config import TaskConfig
from envs.depth_camera_rig import DepthCameraRig, resample_cloud
from envs.factory import make_vec_env
from envs.objects.primitives import cube, primitive_objects
from envs.vision import CLOUD, PRIVILEGED, PROPRIO, STUDENT_DIM, DepthCamera, VisionConfig, cloud_points
from envs.vision_task import VisionGraspTask
from resdex_sb3.errors import UserError
from resdex_sb3.policies import POLICY_ALIASES, VisionStudentPolicy

pytest.importorskip("imitation", reason="imitation is installed separately (pip install --no-deps imitation==1.0.1)")

SMALL_STUDENT = dict(net_arch=dict(pi=[32, 32], vf=[]),
                     features_extractor_kwargs=dict(point_widths=(16, 32), head_widths=(32, 16)))  # fmt: skip
HALF = 0.05  # half edge of the test box


def _student(env) -> VisionStudentPolicy:
    th.manual_seed(0)
    return VisionStudentPolicy(env.observation_space, env.action_space, lambda _: 1e-3, **SMALL_STUDENT)


# ---------------------------------------------------------------------------------------------- layout and frames
def test_privileged_part_is_the_hyper_observation_and_clouds_sit_on_the_object():
    vision = make_vec_env("ResDexVision", 5, primitive_objects(), seed=3, num_threads=1)
    hyper = make_vec_env("ResDexHyper", 5, primitive_objects(), seed=3, num_threads=1, reward_mode="stage2")
    obs, ref = vision.reset(), hyper.reset()
    assert obs.shape == (5, STUDENT_DIM + 202) and vision.observation_space.shape == (STUDENT_DIM + 202,)
    np.testing.assert_array_equal(obs[:, PRIVILEGED], ref)
    np.testing.assert_array_equal(obs[:, PROPRIO][:, :122], ref[:, :122])  # hand state and previous action
    # the cloud is in the same (start-yaw) frame as the object position of the hyper observation
    object_pos = ref[:, 122:125]
    cloud = cloud_points(obs)
    assert np.all(np.abs(cloud.mean(axis=1) - object_pos) < 0.01)
    # cube (env 0): moved back into the object frame, every point is on the cube's surface
    t = vision.task
    world = quat.rotate_yaw(cloud, np.cos(t.hand_yaw), np.sin(t.hand_yaw))  # undo the start-yaw re-posing
    local = quat.rotate(quat.conjugate(t._sensor("object_quat")[0]), world[0] - t._sensor("object_pos")[0])
    assert np.allclose(np.abs(local).max(axis=1), 0.03, atol=1e-4)


def test_camera_mode_student_part_ignores_what_cameras_cannot_see():
    """Same state but the object's velocity: the student part is identical, the privileged part is not."""

    def observe(velocity: np.ndarray) -> np.ndarray:
        task = VisionGraspTask(primitive_objects(), TaskConfig(obs_mode="hyper"), VisionConfig(cloud_mode="camera"),
                               num_threads=1)  # fmt: skip
        task.seed([7] * task.num_envs)
        task.reset()
        lay = task.layout
        task.sim.qvel[:, lay.object_qvel : lay.object_qvel + 6] = velocity
        task.sim.batch.forward()
        return task._observe()

    still = observe(np.zeros(6))
    moving = observe(np.array([0.3, -0.2, 0.1, 2.0, 1.0, -1.0]))
    np.testing.assert_array_equal(still[:, :STUDENT_DIM], moving[:, :STUDENT_DIM])
    assert not np.allclose(still[:, PRIVILEGED], moving[:, PRIVILEGED])
    assert np.abs(still[:, CLOUD]).sum() > 0
    student = _student(make_vec_env("ResDexVision", 1, [cube()], num_threads=1))
    np.testing.assert_array_equal(student.predict(still, deterministic=True)[0],
                                  student.predict(moving, deterministic=True)[0])  # fmt: skip


def test_student_ignores_the_privileged_part_and_saves_and_loads_the_sb3_way(tmp_path):
    env = make_vec_env("ResDexVision", 4, primitive_objects(), seed=0, num_threads=1, cloud_mode="camera")
    obs = env.reset()
    student = _student(env)
    changed = obs.copy()
    changed[:, PRIVILEGED] = np.random.default_rng(0).uniform(-5, 5, changed[:, PRIVILEGED].shape)
    np.testing.assert_array_equal(student.predict(obs, deterministic=True)[0],
                                  student.predict(changed, deterministic=True)[0])  # fmt: skip
    moved = obs.copy()
    moved[:, CLOUD] += 0.05  # but the cloud does matter
    assert not np.allclose(student.predict(obs, deterministic=True)[0], student.predict(moved, deterministic=True)[0])
    assert POLICY_ALIASES["VisionStudentPolicy"] is VisionStudentPolicy
    student.save(str(tmp_path / "student.zip"))
    loaded = VisionStudentPolicy.load(str(tmp_path / "student.zip"), device="cpu")
    np.testing.assert_array_equal(student.predict(moved, deterministic=True)[0],
                                  loaded.predict(moved, deterministic=True)[0])  # fmt: skip


# ---------------------------------------------------------------------------------------------- camera geometry
def _box_scene(blocker: np.ndarray | None) -> tuple[mujoco.batch.Batch, np.ndarray]:
    where = "" if blocker is None else " ".join(map(str, blocker))
    extra = f'<geom name="blocker" type="sphere" size="0.03" pos="{where}"/>' if where else ""
    model = mujoco.MjModel.from_xml_string(f"""
<mujoco><worldbody>
  <geom name="box" type="box" size="{HALF} {HALF} {HALF}"/>
  {extra}
</worldbody></mujoco>""")
    target = np.zeros(model.ngeom, dtype=bool)
    target[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "box")] = True
    return mujoco.batch.Batch(model, nsim=1, nthread=1), target


def _capture(rig: DepthCameraRig, blocker: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    batch, target = _box_scene(blocker)
    return rig.capture(batch, target, np.zeros((1, 3)), np.array([HALF * np.sqrt(3) + 0.01]), np.random.default_rng(0))


def test_occlusion_on_a_box_seen_from_a_known_camera():
    camera = np.array([0.6, 0.3, 0.2])
    rig = DepthCameraRig([DepthCamera("c", tuple(camera), (0.0, 0.0, 0.0))], rays_per_camera=2000,
                         depth_noise=(0.0, 0.0), dropout=0.0, grazing_cos=0.0, depth_range=(0.01, 5.0))  # fmt: skip
    points, valid = _capture(rig, None)
    seen = points[0][valid[0]]
    assert len(seen) > 500
    # only the three faces turned to the camera (+x, +y, +z) come back, each of them
    assert np.allclose(seen.max(axis=1), HALF, atol=1e-6)
    assert np.all(seen.min(axis=1) > -HALF + 1e-6)
    for axis in range(3):
        assert np.sum(np.isclose(seen[:, axis], HALF, atol=1e-6)) > 20
    # a sphere between camera and box removes exactly the rays through it; the others see the same points
    centre = 0.45 * camera
    blocked_points, blocked_valid = _capture(rig, centre)
    assert blocked_valid[0].sum() < valid[0].sum() - 50
    assert not np.any(blocked_valid[0] & ~valid[0])
    np.testing.assert_allclose(blocked_points[0][blocked_valid[0]], points[0][blocked_valid[0]])
    lost = points[0][valid[0] & ~blocked_valid[0]]
    direction = (lost - camera) / np.linalg.norm(lost - camera, axis=1, keepdims=True)
    along = (centre - camera) @ direction.T
    miss = np.linalg.norm(camera + along[:, None] * direction - centre, axis=1)
    assert np.all(miss < 0.03 + 1e-6)  # every lost point's ray passes through the blocker


def test_camera_noise_dropout_and_crop():
    camera = (0.6, 0.0, 0.0)
    rig = DepthCameraRig([DepthCamera("c", camera, (0.0, 0.0, 0.0))], rays_per_camera=2000, depth_noise=(0.002, 0.0),
                         dropout=0.3, grazing_cos=0.0, depth_range=(0.01, 5.0),
                         workspace_low=(-1.0, -1.0, 0.0), workspace_high=(1.0, 1.0, 1.0))  # fmt: skip
    points, valid = _capture(rig, None)
    seen = points[0][valid[0]]
    assert np.all(seen[:, 2] >= 0.0)  # the crop drops the lower half
    assert 0.6 < valid[0].sum() / (0.5 * np.isclose(points[0][:, 0], HALF, atol=0.02).sum()) < 0.8  # ~30 % dropout
    assert 0.001 < np.std(seen[:, 0] - HALF) < 0.003  # depth noise, along x for this camera


def test_resample_cloud_gives_exactly_the_requested_points():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3, 100, 3))
    valid = np.zeros((3, 100), dtype=bool)
    valid[0] = True
    valid[1, :7] = True
    cloud, count = resample_cloud(points, valid, 64, rng)
    assert cloud.shape == (3, 64, 3) and list(count) == [100, 7, 0]
    assert len({tuple(p) for p in cloud[0]}) == 64  # enough points: a subset without repeats
    assert {tuple(p) for p in cloud[1]} == {tuple(p) for p in points[1, :7]}  # few: all of them, repeated


def test_camera_env_steps_and_sees_the_object():
    env = make_vec_env("ResDexVision", 5, primitive_objects(), seed=0, num_threads=1, cloud_mode="camera")
    obs = env.reset()
    assert (env.task.visible_points > 100).all()
    assert np.all(np.abs(cloud_points(obs).mean(axis=1) - obs[:, PRIVILEGED][:, 122:125]) < 0.05)
    for _ in range(3):
        obs, *_ = env.step(np.zeros((5, 24), np.float32))
    assert np.isfinite(obs).all() and obs.shape == (5, STUDENT_DIM + 202)


# ---------------------------------------------------------------------------------------------- expert and DAgger
@pytest.fixture(scope="module")
def expert_run(tmp_path_factory):
    """A tiny untrained hyper run (two bases) in rl-zoo's layout, whose residual is pushed to a fixed pattern so
    the expert's labels are far from an untrained student's."""
    from envs.objects.build import build_embedded
    from envs.objects.store import ObjectStore
    from resdex_sb3.composer import ResidualMoEComposer

    root = tmp_path_factory.mktemp("expert")
    data = root / "data"
    build_embedded(ObjectStore(data), "small", proposals=False)
    bases = []
    for i in range(2):
        env = VecNormalize(make_vec_env("ResDexBase", 4, primitive_objects(), seed=i, num_threads=1), norm_reward=False)
        model = PPO(POLICY_ALIASES["GeometryUnawarePolicy"], env, policy_kwargs=dict(net_arch=[16]), seed=i)
        (root / f"base-{i}").mkdir()
        model.save(root / f"base-{i}" / "model.zip")
        env.save(root / f"base-{i}" / "vecnormalize.pkl")
        bases.append(f"../base-{i}")
    hyper_dir = root / "hyper"
    (hyper_dir / "ResDexHyper-v0").mkdir(parents=True)
    env = ResidualMoEComposer(make_vec_env("ResDexHyper", 4, primitive_objects(), num_threads=1),
                              [root / "base-0", root / "base-1"])  # fmt: skip
    env = VecNormalize(env, norm_reward=False, clip_obs=5.0)
    env.obs_rms.mean[:] = 0.1  # non-trivial statistics, so a wrong normalisation would show
    model = PPO(POLICY_ALIASES["ResidualMoEPolicy"], env, policy_kwargs=dict(net_arch=[16]), seed=0)
    with th.no_grad():
        model.policy.action_net.bias[2:] = th.as_tensor(0.4 * np.sin(np.arange(24)), dtype=th.float32)
    model.save(hyper_dir / "ResDexHyper-v0.zip")
    env.save(hyper_dir / "ResDexHyper-v0" / "vecnormalize.pkl")
    config = {"env_kwargs": {"object_set": "embedded-small", "split": "train", "base_models": bases,
                             "reward_mode": "stage2", "data_dir": str(data)}}  # fmt: skip
    (hyper_dir / "ResDexHyper-v0" / "config.yml").write_text(yaml.safe_dump(config))
    return hyper_dir


def test_privileged_expert_acts_like_the_hyper_stack(expert_run):
    from resdex_sb3.composer import ResidualMoEComposer
    from resdex_sb3.dagger import PrivilegedExpertPolicy

    env = make_vec_env("ResDexVision", 5, primitive_objects(), seed=1, num_threads=1)
    expert = PrivilegedExpertPolicy.from_run(expert_run, env)
    obs = env.reset()
    obs[:, :STUDENT_DIM] = 0.0  # the expert does not read the student part
    got = expert.predict(obs, deterministic=True)[0]
    raw = obs[:, PRIVILEGED]
    stats = VecNormalize.load(str(expert_run / "ResDexHyper-v0" / "vecnormalize.pkl"),
                              make_vec_env("ResDexHyper", 5, primitive_objects(), num_threads=1))  # fmt: skip
    hyper = PPO.load(expert_run / "ResDexHyper-v0.zip", device="cpu")
    composer = ResidualMoEComposer(make_vec_env("ResDexHyper", 5, primitive_objects(), num_threads=1),
                                   [expert_run.parent / "base-0", expert_run.parent / "base-1"])  # fmt: skip
    want = composer.compose(raw, hyper.predict(stats.normalize_obs(raw), deterministic=True)[0])
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(want).max() > 0.2


def test_dagger_end_to_end_resumes_and_the_student_evaluates(expert_run, tmp_path):
    from resdex_sb3.distill import Distillation, load_distill_preset
    from resdex_sb3.evaluate import main as evaluate_main

    assert load_distill_preset("paper")["n_envs"] == 11000
    out = tmp_path / "vision"
    short = {"eval_every_rounds": 100, "env_kwargs": {"episode_length": 30}, "learning_rate": 1e-2}
    first = Distillation(expert_run, "gt_pose", out, "smoke", overrides={**short, "rounds": 4}, progress=False)
    first.run()
    assert json.loads((out / "progress.json").read_text())["rounds_done"] == 4
    with pytest.raises(UserError, match="--n-envs 16: .* was started with 8 envs"):
        Distillation(expert_run, "gt_pose", out, "smoke", overrides={"n_envs": 16}, progress=False).config()
    other_seed = Distillation(expert_run, "gt_pose", out, "smoke", seed=5, progress=False)
    assert other_seed.config()["seed"] == 0 and other_seed.seed == 0  # a resume keeps the run's seed
    again = Distillation(expert_run, "gt_pose", out, "smoke", overrides={"rounds": 12}, progress=False)
    again.run()
    progress = json.loads((out / "progress.json").read_text())
    assert progress["rounds_done"] == 12 and progress["student_rounds"] == 12 and progress["env_steps"] == 12 * 4 * 8
    assert set(progress["last_eval"]) == {"train", "unseen_obj", "unseen_cat"}
    config = yaml.safe_load((out / "ResDexVision-v0" / "config.yml").read_text())
    assert config["mode"] == "gt_pose" and config["algo"] == "dagger" and config["env_kwargs"]["privileged"] is False
    assert (out / config["expert"]).resolve() == expert_run.resolve()
    # the imitation loss went down, and the scalars are in tensorboard
    from resdex_sb3.curves import read_scalar

    steps, loss = read_scalar(out / "tb", "bc/loss")
    assert len(loss) == 12 and np.mean(loss[-3:]) < 0.5 * np.mean(loss[:2])
    assert read_scalar(out / "tb", "eval/success_unseen_cat")[0]
    # saved and loaded, the student acts the same
    loaded = VisionStudentPolicy.load(str(out / "ResDexVision-v0.zip"), device="cpu")
    latest = VisionStudentPolicy.load(str(out / "checkpoint" / "policy-latest.zip"), device="cpu")
    obs = np.random.default_rng(0).uniform(-1, 1, (6, STUDENT_DIM + 202)).astype(np.float32)
    act = loaded.predict(obs, deterministic=True)[0]
    np.testing.assert_array_equal(act, latest.predict(obs, deterministic=True)[0])
    assert not np.allclose(act, 0.0, atol=0.05)
    # evaluate takes the student run
    report = tmp_path / "eval.json"
    assert evaluate_main(["--model", str(out), "--split", "unseen_cat", "--trials", "1", "--json", str(report)]) == 0
    summary = json.loads(report.read_text())
    assert summary["split"] == "unseen_cat" and 0.0 <= summary["success"] <= 1.0 and summary["num_objects"] == 10
