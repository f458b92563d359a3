"""Properties that decide whether training learns the right thing, though a run would still go through without
them: desynchronised episodes, identical Base/Hyper observations, start-yaw invariant physics, a fresh grasp
proposal per reset, the hold reward, the KL-adaptive learning rate and a baseline that differs only in its policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

from callbacks.kl_adaptive_lr import KLAdaptiveLR
from envs import quaternions as quat
from envs.config import SceneConfig, TaskConfig
from envs.factory import make_vec_env
from envs.objects.primitives import cube, primitive_objects
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal
from envs.rewards import BONUS_RADIUS, HOLD_SPEED, HOLD_WEIGHT, GraspQuantities, reward_terms
from envs.scene import HAND_JOINTS, Scene
from envs.task import ACTION_DIM, GraspTask
from resdex_sb3.zoo_manager import DEFAULT_CONFIG, select_preset

BASE_OBS_DIM = 128


def _wrap(angle: np.ndarray | float) -> np.ndarray:
    """Angle difference folded into [-pi, pi)."""
    return (np.asarray(angle) + np.pi) % (2.0 * np.pi) - np.pi


# ---------------------------------------------------------------------- a. desynchronised starts
def _first_done_step(random_initial_progress: bool, episode_length: int) -> tuple[np.ndarray, np.ndarray]:
    env = make_vec_env("ResDexBase", 4, primitive_objects(), seed=0, num_threads=1, episode_length=episode_length,
                       random_initial_progress=random_initial_progress)  # fmt: skip
    env.reset()
    start = env.task.progress.copy()
    first_done = np.zeros(env.num_envs, dtype=np.int64)
    for step in range(1, episode_length + 1):
        _, _, dones, _ = env.step(np.zeros((env.num_envs, ACTION_DIM), np.float32))
        first_done[(first_done == 0) & dones] = step
    assert (first_done > 0).all()  # every env finished within one full episode
    assert (env.task.progress < episode_length).all()
    return start, first_done


def test_random_initial_progress_desynchronises_the_first_episodes():
    start, first_done = _first_done_step(True, episode_length=8)
    assert len(set(start.tolist())) > 1 and ((0 <= start) & (start < 8)).all()
    np.testing.assert_array_equal(first_done, 8 - start)  # each env finishes where its counter says
    assert len(set(first_done.tolist())) > 1  # so they do not all truncate (and bootstrap) on the same step

    start, first_done = _first_done_step(False, episode_length=8)
    np.testing.assert_array_equal(start, 0)
    np.testing.assert_array_equal(first_done, 8)


# ---------------------------------------------------------------------- b. Base obs = Hyper obs[:, :128]
def test_base_observation_is_the_hyper_observation_prefix():
    objects = primitive_objects()[:3]
    base = make_vec_env("ResDexBase", 3, objects, seed=5, num_threads=1)
    hyper = make_vec_env("ResDexHyper", 3, objects, seed=5, num_threads=1)
    obs_b, obs_h = base.reset(), hyper.reset()
    assert obs_b.shape[1] == BASE_OBS_DIM and obs_h.shape[1] > BASE_OBS_DIM
    np.testing.assert_array_equal(obs_b, obs_h[:, :BASE_OBS_DIM])
    rng = np.random.default_rng(0)
    for _ in range(5):  # the rewards differ (base vs stage1); the physics and the shared observation must not
        actions = rng.uniform(-1, 1, (3, ACTION_DIM)).astype(np.float32)
        obs_b, obs_h = base.step(actions)[0], hyper.step(actions)[0]
        np.testing.assert_array_equal(obs_b, obs_h[:, :BASE_OBS_DIM])


# ---------------------------------------------------------------------- c. start-yaw invariant physics
class _PerAxisCapTask(GraspTask):
    """The task with the old per-world-axis cap on the root servo force, to show the test can tell them apart."""

    def _apply_actions(self, act: np.ndarray) -> None:
        super()._apply_actions(act)
        lay = self.layout
        force = quat.rotate_yaw(act[:, 0:3], np.cos(self.hand_yaw), np.sin(self.hand_yaw))
        velocity = self.sim.qvel[:, lay.root_qvel[0:3]]
        limit = self.scene.config.root_force_limit
        servo = np.clip(self._force_gain * force + self._force_bias * velocity, -limit, limit)
        self.sim.ctrl[:, lay.root_ctrl[0:3]] = (servo - self._force_bias * velocity) / self._force_gain


# Seeds 1 and 7 start the hand at yaws 0.074 and 0.786 rad: 41 degrees apart, far from a multiple of 90 degrees,
# where a per-axis cap (or anything else aligned with the world axes) looks the same.
_YAW_SEEDS = (1, 7)


def _yawed_pair(scene: Scene, obj: ObjectSpec, cls: type[GraspTask] = GraspTask) -> list[GraspTask]:
    tasks = []
    for seed in _YAW_SEEDS:
        task = cls([obj], TaskConfig(obs_mode="hyper"), scene=scene, autoreset=False, num_threads=1)
        task.seed([seed])
        task.reset()
        tasks.append(task)
    return tasks


TOUCH = slice(87, 92)  # fingertip touch in the observation (after 22 joint and 65 fingertip values)


def _largest_difference(tasks: Sequence[GraspTask], actions: np.ndarray) -> tuple[np.ndarray, float]:
    """Per step, the largest difference between the two tasks' (start-yaw frame) observations; and the largest
    fingertip touch seen."""
    assert abs(_wrap(tasks[0].hand_yaw[0] - tasks[1].hand_yaw[0])) > 0.5  # the start yaws really differ
    np.testing.assert_array_equal(tasks[0]._obs, tasks[1]._obs)
    difference, touch = [], 0.0
    for a in actions:
        obs = [task.step(a[None]).obs for task in tasks]
        difference.append(np.abs(obs[0] - obs[1]).max())
        touch = max(touch, float(obs[0][0, TOUCH].max()))
    return np.array(difference), touch


def _lateral_actions(steps: int = 20) -> np.ndarray:
    """Saturating lateral pushes (833 N per unit against a 30 N cap) in three directions, some lift, torques and
    finger motion, all in the start-yaw frame."""
    rng = np.random.default_rng(0)
    actions = np.zeros((steps, ACTION_DIM))
    actions[:7, 0:3] = [1.0, 0.0, 0.2]
    actions[7:14, 0:3] = [0.0, -1.0, 0.0]
    actions[14:, 0:3] = [-0.7, 0.7, 0.5]
    actions[:, 3:6] = rng.uniform(-0.3, 0.3, (steps, 3))
    actions[:, 6:] = rng.uniform(-1.0, 1.0, (steps, ACTION_DIM - 6))
    return actions


# Measured: the observations agree to ~1e-15 (float64 rounding of the yaw rotations), the per-axis cap differs
# by 6e-2 on the first step already. 1e-5 keeps a wide margin for rounding on other platforms / MuJoCo builds
# while staying three orders of magnitude below what a yaw-dependent force produces.
YAW_TOLERANCE = 1e-5


def test_root_force_cap_does_not_depend_on_the_start_yaw():
    obj = primitive_objects()[1]  # an elongated box: no 90-degree symmetry that could hide a difference
    scene = Scene()
    actions = _lateral_actions()
    assert np.abs(actions[:, 0:2]).max() * scene.config.root_force_per_action > 10 * scene.config.root_force_limit
    norm_cap = _largest_difference(_yawed_pair(scene, obj), actions)[0]
    assert norm_cap.max() <= YAW_TOLERANCE, norm_cap
    per_axis = _largest_difference(_yawed_pair(scene, obj, _PerAxisCapTask), actions)[0]
    assert per_axis.min() > 100 * YAW_TOLERANCE, per_axis  # the same test catches a per-axis cap on every step


def test_contact_physics_does_not_depend_on_the_start_yaw():
    """Elliptic friction cones (envs/scene.py): MuJoCo's default pyramidal facets follow world-fixed contact
    tangents, which made contact forces depend on the start yaw (obs differed by 0.5 within 6 steps of contact)."""
    obj = primitive_objects()[1]
    scene = Scene(SceneConfig(hand_start=(0.0, 0.0, 0.7)))  # start low enough that the hand presses the box
    steps = 20
    actions = np.zeros((steps, ACTION_DIM))
    actions[:, 0:3] = [1.0, 0.0, -1.0]
    actions[8:14, 0:3] = [0.0, -1.0, -0.5]
    actions[14:, 0:3] = [-0.7, 0.7, 1.0]
    actions[:, 6:] = np.linspace(-1.0, 1.0, steps)[:, None]  # close the fingers on it
    difference, touch = _largest_difference(_yawed_pair(scene, obj), actions)
    assert touch > 0.1  # the hand pressed the box (else this test checks nothing beyond the one above)
    assert difference.max() <= YAW_TOLERANCE, difference


# ---------------------------------------------------------------------- d. a random proposal per reset
def _start_palm_quat(scene: Scene) -> np.ndarray:
    data = mujoco.MjData(scene.model)
    mujoco.mj_forward(scene.model, data)
    return data.sensordata[scene.layout.sensor["palm_quat"]].copy()


def test_every_reset_draws_a_proposal_and_starts_yawed_like_it():
    scene = Scene()
    start_palm = _start_palm_quat(scene)
    yaws = np.array([-2.0, 0.5, 2.5])
    proposals = [
        GraspProposal(hand_point=np.array([0.01 * k, 0.0, 0.05]),
                      palm_quat=quat.multiply(quat.from_yaw(np.array([yaw]))[0], start_palm),
                      hand_qpos=np.full(len(HAND_JOINTS), 0.1 * k))  # fmt: skip
        for k, yaw in enumerate(yaws)
    ]
    plain = cube(name="plain_cube")
    task = GraspTask([cube(), plain], scene=scene, proposals={"cube": proposals}, autoreset=False, num_threads=1)
    task.seed([3, 4])
    np.testing.assert_array_equal(task.has_proposal, [True, False])
    obj = task.layout.object_qpos
    drawn = []
    for _ in range(15):
        task.reset()
        qpos = task.sim.qpos
        object_yaw = 2.0 * np.arctan2(qpos[:, obj + 6], qpos[:, obj + 3])  # objects start yawed about z only
        hand_yaw = qpos[:, task.layout.root_qpos[3]]
        np.testing.assert_allclose(task.hand_yaw, hand_yaw)
        k = int(task.proposal_index[0])
        drawn.append(k)
        assert abs(_wrap(hand_yaw[0] - object_yaw[0] - yaws[k])) < 1e-9
        np.testing.assert_array_equal(task.proposal_point[0], proposals[k].hand_point)  # the reward follows it
        np.testing.assert_array_equal(task.proposal_qpos[0], proposals[k].hand_qpos)
        # no proposal: unyawed relative to the object, no proposal index
        assert abs(_wrap(hand_yaw[1] - object_yaw[1])) < 1e-9 and task.proposal_index[1] == 0
    assert set(drawn) == {0, 1, 2}
    assert len(set(zip(drawn, drawn[1:]))) > 1  # not a fixed cycle either


# ---------------------------------------------------------------------- e. the stage2_hold reward
def test_hold_term_pays_for_a_slow_object_held_near_the_goal_centre():
    goal = np.array([0.0, 0.0, 0.9])
    half = goal + [0.0, 0.0, -0.5 * BONUS_RADIUS]
    outside = goal + [0.0, 0.0, -2.0 * BONUS_RADIUS]
    # rows: at the centre at rest, half-way out at rest, at 0.1 m/s, at 1 m/s, in the sphere with the hand away,
    # near but outside the sphere
    object_pos = np.array([goal, half, half, half, half, outside])
    hand_point = object_pos + [0.0, 0.0, 0.05]
    hand_point[4] += [0.3, 0.0, 0.0]
    tips = object_pos[:, None, :] + np.full((6, 5, 3), 0.02)
    tips[4] += [0.3, 0.0, 0.0]
    n = len(object_pos)
    q = GraspQuantities(object_pos=object_pos, hand_point=hand_point, tip_points=tips, goal=goal,
                        lift_action=np.zeros(n), table_height=0.6, rest_height=np.full(n, 0.03),
                        proposal_delta=np.zeros(n), proposal_match=np.ones(n, bool),
                        object_speed=np.array([0.0, 0.0, HOLD_SPEED, 10 * HOLD_SPEED, 0.0, 0.0]))  # fmt: skip
    for paper_mode in ("stage2", "base"):
        hold_terms = reward_terms(f"{paper_mode}_hold", q)
        hold = hold_terms["hold"]
        assert hold[0] == pytest.approx(HOLD_WEIGHT)  # centred and still: the whole term
        assert hold[1] == pytest.approx(HOLD_WEIGHT / 2)  # half-way to the edge: half of it
        assert hold[2] == pytest.approx(HOLD_WEIGHT / 4)  # and at HOLD_SPEED half of that
        assert hold[2] > hold[3] > 0.0
        np.testing.assert_array_equal(hold[4:], 0.0)
        paper = reward_terms(paper_mode, q)
        assert "hold" not in paper  # the paper's modes stay the paper's
        assert set(hold_terms) == set(paper) | {"hold"}
        for name, value in paper.items():  # and the *_hold mode only adds the term
            np.testing.assert_array_equal(hold_terms[name], value)
        with pytest.raises(ValueError, match="object_speed"):
            reward_terms(f"{paper_mode}_hold", replace(q, object_speed=None))


# ---------------------------------------------------------------------- f. KL-adaptive learning rate
def test_kl_adaptive_rate_rule():
    rule = KLAdaptiveLR(target_kl=0.016)
    assert rule.next_rate(3e-4, 0.033) == pytest.approx(2e-4)  # above 2x target: / 1.5
    assert rule.next_rate(1.2e-5, 1.0) == 1e-5  # floor
    assert rule.next_rate(3e-4, 0.0079) == pytest.approx(4.5e-4)  # below target / 2: x 1.5
    assert rule.next_rate(8e-3, 0.0) == 1e-2  # cap
    for kl in (0.008, 0.016, 0.032):  # the band edges included
        assert rule.next_rate(3e-4, kl) == 3e-4
    with pytest.raises(ValueError):
        KLAdaptiveLR(factor=1.0)


class _ScriptedKL:
    """Wraps ``model.train``: replaces the logged ``train/approx_kl`` with the next scripted value and records the
    rate the optimizer stepped with (read inside the optimizer, i.e. during the update)."""

    def __init__(self, model: PPO, kls: Sequence[float]) -> None:
        self.kls = list(kls)
        self.rates: list[float] = []
        optimizer = model.policy.optimizer
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: self._saw(opt.param_groups[0]["lr"]))
        train = model.train

        def scripted_train() -> None:
            steps = len(self.rates)
            train()
            assert len(self.rates) == steps + 1  # one minibatch, one epoch: one optimizer step per update
            model.logger.record("train/approx_kl", self.kls.pop(0))

        model.train = scripted_train

    def _saw(self, lr: float) -> None:
        self.rates.append(lr)


def _pendulum_ppo() -> PPO:
    env = sb3_make_vec_env("Pendulum-v1", n_envs=1, seed=0)
    return PPO("MlpPolicy", env, n_steps=32, batch_size=32, n_epochs=1, learning_rate=3e-4, seed=0, device="cpu",
               policy_kwargs=dict(net_arch=[8]))  # fmt: skip


def test_kl_adaptive_lr_drives_the_optimizer_and_resumes_after_load(tmp_path: Path):
    model = _pendulum_ppo()
    script = _ScriptedKL(model, [1.0, 1.0, 0.0, 0.016, 0.016])
    model.learn(32 * 5, callback=KLAdaptiveLR(target_kl=0.016))
    # update k steps with the rate that update k-1's KL chose: high, high, low, in band
    expected = [3e-4, 2e-4, 2e-4 / 1.5, 2e-4, 2e-4]
    np.testing.assert_allclose(script.rates, expected, rtol=1e-9)
    reached = expected[-1]  # unlike the YAML's 3e-4
    assert model.policy.optimizer.param_groups[0]["lr"] == pytest.approx(reached)

    del model.train  # the scripted wrapper is an instance attribute, which SB3 would save with the model
    model.save(tmp_path / "model.zip")
    loaded = PPO.load(tmp_path / "model.zip", env=model.get_env(), device="cpu")
    assert loaded.policy.optimizer.param_groups[0]["lr"] == pytest.approx(reached)
    again = _ScriptedKL(loaded, [1.0, 0.016])
    loaded.learn(32 * 2, callback=KLAdaptiveLR(target_kl=0.016), reset_num_timesteps=False)
    # resumes from the optimizer's rate, not from the YAML's learning_rate the loaded schedule was rebuilt from
    np.testing.assert_allclose(again.rates, [reached, reached / 1.5], rtol=1e-9)


# ---------------------------------------------------------------------- g. the baseline differs only in its policy
# The ResDexHyper-v0 note in zoo_configs/ppo.yml documents this: the from-scratch baseline has the same env,
# budget and PPO settings, and only its policy (and that policy's action noise) differ.
BASELINE_MAY_DIFFER = {"policy", "policy_kwargs"}
BASELINE_POLICY_KWARGS_MAY_DIFFER = {"residual_log_std_init", "log_std_init"}


def _policy_kwargs(params: dict[str, Any]) -> dict[str, Any]:
    kwargs = params.get("policy_kwargs", {})
    if isinstance(kwargs, str):  # rl-zoo evaluates the string; only dict() of literals is expected here
        kwargs = eval(kwargs, {"__builtins__": {}, "dict": dict})  # noqa: S307
    return dict(kwargs)


@pytest.mark.parametrize("preset", ["smoke", "cpu", "paper"])
def test_baseline_preset_differs_from_the_method_only_in_its_policy(preset: str):
    method = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", preset)
    baseline = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", f"baseline-{preset}")
    differ = {k for k in method.keys() | baseline.keys() if method.get(k) != baseline.get(k)}
    assert differ <= BASELINE_MAY_DIFFER, differ - BASELINE_MAY_DIFFER
    assert method["policy"] != baseline["policy"]
    kw_method, kw_baseline = _policy_kwargs(method), _policy_kwargs(baseline)
    kw_differ = {k for k in kw_method.keys() | kw_baseline.keys() if kw_method.get(k) != kw_baseline.get(k)}
    assert kw_differ <= BASELINE_POLICY_KWARGS_MAY_DIFFER, kw_differ - BASELINE_POLICY_KWARGS_MAY_DIFFER
