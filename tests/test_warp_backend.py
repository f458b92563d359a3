"""The MuJoCo Warp backend (``backend="warp"``) on warp's CPU device against the C MuJoCo backend.

Small on purpose (1-5 worlds, short horizons): warp's CPU device steps a few worlds at ~40 control steps/s, and the
first run compiles its kernels (at -O0 here) for about a minute into ``.warp_cache/`` (later runs load them in
seconds).
Tolerances, measured on this CPU (float32 warp vs float64 C; maxima over the horizon, see each test):
contact-free 30 steps qpos 2e-5 / qvel 1e-3; fixed grasping state: observations 1e-3, reward terms 1e-3.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("mujoco_warp")

from stable_baselines3.common.env_checker import check_env  # noqa: E402
from subprocess_cli import run_module  # noqa: E402

from envs.config import REWARD_MODES, SceneConfig, TaskConfig  # noqa: E402
from envs.factory import make_vec_env  # noqa: E402
from envs.objects.primitives import cube, primitive_objects  # noqa: E402
from envs.objects.spec import ConvexPart, ObjectSpec  # noqa: E402
from envs.proposals import GraspProposal  # noqa: E402
from envs.scene import Scene  # noqa: E402
from envs.scripted import run_scripted_grasp, scripted_action  # noqa: E402
from envs.task import GraspTask  # noqa: E402
from envs.variants import VARIANTS  # noqa: E402
from envs.warp_sim import PARK_DISTANCE, WarpSim  # noqa: E402

#: max |qpos| / |qvel| difference over a contact-free horizon (hand in the air, object at rest on the table)
FREE_QPOS_ATOL, FREE_QVEL_ATOL = 2e-5, 1e-3
#: observation and reward-term differences on one grasping state (touch forces are the loosest)
OBS_ATOL, TERM_ATOL = 1e-3, 1e-3
CPU = "cpu"


@pytest.fixture(scope="module", autouse=True)
def unoptimised_kernels():
    """Kernels compiled at -O0 for this module: a fresh checkout (CI) compiles them in ~2/3 of the -O2 time, and
    these horizons are short enough that the slower code costs less than that. Same physics code, same results
    within the tolerances above; the option is part of warp's cache key, so the default build is not touched."""
    import warp as wp

    level = wp.config.optimization_level
    wp.config.optimization_level = 0
    yield
    wp.config.optimization_level = level


def _pair(objects, config: TaskConfig | None = None, scene: Scene | None = None, seed: int = 3, proposals=None):
    """The same task on both backends, seeded alike and reset."""
    scene = scene or Scene()
    tasks = [GraspTask(objects, config, scene=scene, autoreset=False, num_threads=1, backend=b, proposals=proposals,
                       device=CPU if b == "warp" else None) for b in ("mujoco", "warp")]  # fmt: skip
    for task in tasks:
        task.seed([seed + i for i in range(len(objects))])
        task.reset()
    return tasks


def hand_object_contacts(task: GraspTask, env: int) -> int:
    """Hand-object contacts of world ``env`` now (C MuJoCo's collision of its state)."""
    data = task.sim.data_of(env)
    hand, obj = set(task.layout.hand_geoms.tolist()), set(task.layout.object_geoms.tolist())
    return sum(bool({int(k.geom1), int(k.geom2)} & hand and {int(k.geom1), int(k.geom2)} & obj)
               for k in data.contact[: data.ncon])  # fmt: skip


def test_contact_free_horizon_matches_c_mujoco():
    c, w = _pair([cube(), cube()])
    np.testing.assert_allclose(w.sim.qpos, c.sim.qpos, atol=1e-6)  # the same reset draws (float32 on warp)
    actions = np.zeros((30, 2, 24))
    actions[..., :6] = 0.2 * np.random.default_rng(0).uniform(-1, 1, size=(30, 2, 6))  # slow root: hand stays clear
    dq = dv = 0.0
    for a in actions:
        rc, rw = c.step(a), w.step(a)
        assert not rc.physics_reset.any() and not rw.physics_reset.any()
        dq = max(dq, float(np.abs(c.sim.qpos - w.sim.qpos).max()))
        dv = max(dv, float(np.abs(c.sim.qvel - w.sim.qvel).max()))
        assert all(hand_object_contacts(c, i) == 0 for i in range(2))  # the hand never reaches the object
    print(f"contact-free 30 steps: max |dqpos| {dq:.2e}, max |dqvel| {dv:.2e}")
    assert dq <= FREE_QPOS_ATOL and dv <= FREE_QVEL_ATOL


@pytest.mark.parametrize("backend", ["mujoco", "warp"])
def test_scripted_grasp_lifts_the_cube(backend):
    task = GraspTask([cube()], autoreset=False, num_threads=1, backend=backend,
                     device=CPU if backend == "warp" else None)  # fmt: skip
    result = run_scripted_grasp(task)
    assert result["lift"][0] >= 0.15
    assert result["is_success"][0]


def test_observations_and_reward_terms_agree_on_a_grasping_state():
    config = TaskConfig(obs_mode="hyper", reward_mode="stage2")
    # a proposal (palm above the cube, fingers half closed) so that the proposal term is not 0
    proposal = GraspProposal(np.array([0.0, 0.0, 0.05]), np.array([0.0, 1.0, 0.0, 0.0]), np.full(22, 0.4))
    c, w = _pair([cube()], config, proposals={"cube": proposal})
    top = c.scene.config.table_height + 2 * c.rest_height
    for step in range(150):  # C MuJoCo's scripted grasp, into the lift
        c.step(scripted_action(c, step, top))
    qpos, qvel = c.sim.qpos.copy(), c.sim.qvel.copy()
    assert hand_object_contacts(c, 0) >= 3  # a grasping state
    act = scripted_action(c, 150, top)
    for task in (c, w):
        task.sim.reset(np.array([0]), qpos, qvel)
        task.prev_action[:] = act
    obs_c, obs_w = c._observe(), w._observe()
    print(f"grasping state: max |dobs| {np.abs(obs_c - obs_w).max():.2e}")
    np.testing.assert_allclose(obs_w, obs_c, atol=OBS_ATOL)
    for mode in REWARD_MODES:  # every term of every reward mode
        c.set_reward_mode(mode), w.set_reward_mode(mode)
        (terms_c, delta_c), (terms_w, delta_w) = c._reward_terms(act), w._reward_terms(act)
        assert list(terms_c) == list(terms_w)
        print(f"grasping state, {mode}: max |dterm|", {k: f"{np.abs(terms_c[k] - terms_w[k]).max():.1e}" for k in terms_c})
        for name in terms_c:
            np.testing.assert_allclose(terms_w[name], terms_c[name], atol=TERM_ATOL, err_msg=f"{mode}: {name}")
        np.testing.assert_allclose(delta_w, delta_c, atol=TERM_ATOL)


def _box_hull(half: tuple[float, float, float]) -> ObjectSpec:
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=float) * half
    return ObjectSpec(f"hull_box_{half[0]}", (ConvexPart("hull", vertices=corners),), category="box")


def test_mixed_primitive_batch_puts_each_object_in_its_own_world():
    objects = primitive_objects()  # box, long box, cylinder, sphere, capsule: one geom type per slot is not enough
    scene = Scene()
    sim = WarpSim(scene, objects, device=CPU)
    size = sim.mjw_model.geom_size.numpy()
    pos = sim.mjw_model.geom_pos.numpy()
    mass = sim.mjw_model.body_mass.numpy()
    base = sim.base_model
    body = base.body("object").id
    object_geoms = np.flatnonzero(base.geom_bodyid == body)
    for world, obj in enumerate(objects):
        model = scene.object_model(obj)
        assert mass[world, body] == pytest.approx(model.body_mass[body], rel=1e-6)
        kind = obj.parts[0].kind
        live = [g for g in object_geoms if base.geom_contype[g] and np.linalg.norm(pos[world, g]) < PARK_DISTANCE / 2]
        assert [base.geom_type[g] for g in live] == [model.geom("object_prim0").type[0]], kind
        np.testing.assert_allclose(size[world, live[0]], model.geom("object_prim0").size, rtol=1e-6)
    # physics: every object comes to rest where C MuJoCo puts it
    c, w = _pair(objects, scene=scene)
    for _ in range(15):
        zero = np.zeros((len(objects), 24))
        c.step(zero), w.step(zero)
    z_c = c.sim.sensordata[:, c.layout.sensor["object_pos"]][:, 2]
    z_w = w.sim.sensordata[:, w.layout.sensor["object_pos"]][:, 2]
    np.testing.assert_allclose(z_w, z_c, atol=2e-4)


def test_mixed_hull_batch_gives_each_world_its_own_mesh():
    small, large = _box_hull((0.02, 0.02, 0.02)), _box_hull((0.03, 0.025, 0.035))
    objects = [small, large, small, large]
    scene = Scene(SceneConfig(hull_slots=1))
    sim = WarpSim(scene, objects, device=CPU)
    slot = sim.base_model.geom("object_hull0").id
    dataid = sim.mjw_model.geom_dataid.numpy()[:, slot]
    assert dataid[0] == dataid[2] != dataid[1] == dataid[3]
    c, w = _pair(objects, scene=scene)
    for _ in range(15):
        zero = np.zeros((4, 24))
        c.step(zero), w.step(zero)
    z_c = c.sim.sensordata[:, c.layout.sensor["object_pos"]][:, 2]
    z_w = w.sim.sensordata[:, w.layout.sensor["object_pos"]][:, 2]
    np.testing.assert_allclose(z_w, z_c, atol=2e-4)
    assert z_w[1] - z_w[0] == pytest.approx(0.035 - 0.02, abs=2e-3)  # each world rests on its own hull


def test_reset_leaves_other_worlds_untouched():
    task = GraspTask(primitive_objects()[:3], autoreset=False, num_threads=1, backend="warp", device=CPU)
    task.reset()
    for a in np.random.default_rng(0).uniform(-1, 1, size=(10, 3, 24)):
        task.step(a)
    qpos, qvel, before = task.sim.qpos.copy(), task.sim.qvel.copy(), task._obs.copy()
    obs = task.reset(np.array([1]))
    for i in (0, 2):
        np.testing.assert_array_equal(task.sim.qpos[i], qpos[i])
        np.testing.assert_array_equal(task.sim.qvel[i], qvel[i])
        np.testing.assert_array_equal(obs[i], before[i])
    assert not np.allclose(task.sim.qpos[1], qpos[1])


def test_a_reset_world_observes_what_c_mujoco_computes():
    """A reset takes the world's sensors from C MuJoCo's forward of its new state (no whole-batch forward on the
    device): its observation row equals the C backend's to float32 rounding of the state; the next step runs
    from it as C MuJoCo does."""
    c, w = _pair(primitive_objects()[:3])
    actions = np.random.default_rng(2).uniform(-0.3, 0.3, size=(6, 3, 24))
    for a in actions[:3]:
        c.step(a), w.step(a)
    obs_c, obs_w = c.reset(np.array([1])), w.reset(np.array([1]))  # the same draws: the envs are seeded alike
    np.testing.assert_allclose(w.sim.qpos[1], c.sim.qpos[1], atol=1e-6)
    np.testing.assert_allclose(obs_w[1], obs_c[1], atol=1e-5)
    for a in actions[3:]:
        c.step(a), w.step(a)
    np.testing.assert_allclose(w.sim.qpos[1], c.sim.qpos[1], atol=FREE_QPOS_ATOL)


def test_cpu_arrays_are_views_of_the_warp_arrays():
    sim = WarpSim(Scene(), [cube()], device=CPU)
    sim.ctrl[0, 0] = 0.25
    assert sim.mjw_data.ctrl.numpy()[0, 0] == np.float32(0.25)
    assert np.shares_memory(sim.qpos, sim.mjw_data.qpos.numpy())


def test_vec_env_contract_on_warp():
    env = make_vec_env("ResDexBase", num_envs=2, seed=0, episode_length=4, backend="warp", device=CPU)
    env.reset()
    for step in range(4):
        obs, rewards, dones, infos = env.step(np.zeros((2, 24), np.float32))
        if step < 3:
            assert not dones.any() and all(info == {} for info in infos)
    assert dones.all() and obs.dtype == np.float32 and np.isfinite(obs).all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True and info["terminal_observation"].shape == (128,)
        assert info["episode"]["r"] == pytest.approx(sum(info["reward_terms"].values()), rel=1e-5)
    # a blow-up ends and resets that world only
    env.task.sim.qvel[1, :] = np.nan
    obs, rewards, dones, infos = env.step(np.zeros((2, 24), np.float32))
    assert dones.tolist() == [False, True] and infos[1]["physics_reset"] is True
    assert np.isfinite(obs).all() and np.isfinite(env.task.sim.qpos).all()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_sb3_check_env_on_every_env_id_on_warp(variant):
    env = gym.make(f"{variant}-v0", backend="warp", device=CPU, episode_length=8).unwrapped
    assert env.task.backend == "warp"
    check_env(env, warn=True)


def test_train_and_evaluate_on_warp_then_evaluate_on_c_mujoco(tmp_path, small_data):
    """The CLIs end to end on warp's CPU device (8-step episodes keep it short), and the trained policy evaluated on
    the other backend with ``--backend``: each JSON names the backend it ran on."""
    run = tmp_path / "warp-base"
    trained = run_module("resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase", "--preset", "smoke", "-n", "256",
                         "--run-dir", str(run), "--env-kwargs", "backend:'warp'", "device:'cpu'", "episode_length:8",
                         data=small_data)  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((run / "checkpoint.json").read_text())["num_timesteps"] == 256
    summaries = {}
    for backend in ("warp", "mujoco"):
        out = tmp_path / f"{backend}.json"
        extra = () if backend == "warp" else ("--backend", backend)  # warp: the run's own
        done = run_module("resdex_sb3.evaluate", "--model", str(run), "--split", "unseen_cat", "--trials", "1",
                          "--json", str(out), *extra, data=small_data)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert f"backend={backend}" in done.stdout
        summaries[backend] = json.loads(out.read_text())
    assert [s["backend"] for s in summaries.values()] == ["warp", "mujoco"]
    assert [len(s["objects"]) for s in summaries.values()] == [10, 10]
    bad = run_module("resdex_sb3.evaluate", "--model", str(run), "--split", "unseen_cat", "--backend", "mujoco",
                     "--device", "cpu", data=small_data)  # fmt: skip
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "error: option device 'cpu' needs backend 'warp' (backend 'mujoco' runs on the CPU)"), bad.stderr[-3000:]


def test_bad_backend_options_are_named():
    with pytest.raises(ValueError, match="option backend 'physx'"):
        make_vec_env("ResDexBase", num_envs=1, backend="physx")
    with pytest.raises(ValueError, match="option device 'cuda'"):
        make_vec_env("ResDexBase", num_envs=1, device="cuda")
    with pytest.raises(ValueError, match="option device 'tpu'"):
        make_vec_env("ResDexBase", num_envs=1, backend="warp", device="tpu")
    with pytest.raises(ValueError, match="cloud_mode 'camera'"):
        make_vec_env("ResDexVision", num_envs=1, backend="warp", device=CPU, cloud_mode="camera")


def test_cpu_runs_are_deterministic():
    runs = []
    for _ in range(2):
        task = GraspTask([cube()], autoreset=False, num_threads=1, backend="warp", device=CPU)
        task.seed([5])
        task.reset()
        for a in np.random.default_rng(1).uniform(-1, 1, size=(10, 1, 24)):
            task.step(a)
        runs.append(task.sim.qpos.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_env_kwargs_choose_the_backend():
    from resdex_sb3.env_builder import build_env  # what --env-kwargs "backend:'warp'" "device:'cpu'" reach

    env = build_env("ResDexHyper-v0", 2, 0, {"object_set": "embedded-small", "backend": "warp", "device": "cpu"})
    assert env.task.backend == "warp" and env.task.sim.device.is_cpu
    env.reset()
    obs, _, _, _ = env.step(np.zeros((2, 24), np.float32))
    assert obs.shape == (2, 202) and np.isfinite(obs).all()
    with pytest.raises(ValueError, match="option backend 'physx'"):
        build_env("ResDexBase-v0", 2, 0, {"backend": "physx"})
