"""The task's fast paths (component-array arithmetic, the cached yaw functions) against plain reference formulas,
bit for bit: the observation, reward inputs and controls must not depend on how they are computed."""

import numpy as np
import pytest

from envs import quaternions as quat
from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects
from envs.proposals import GraspProposal
from envs.rewards import GraspQuantities, reward_terms


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal bit for bit (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _reference_multiply(q, r):
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2],
                    axis=-1)  # fmt: skip


def _reference_rotate(q, v):
    t = 2.0 * np.cross(q[..., 1:], v)
    return v + q[..., :1] * t + np.cross(q[..., 1:], t)


def _reference_rotate_yaw(v, cos, sin):
    shape = (-1,) + (1,) * (v.ndim - 2)
    c, s = cos.reshape(shape), sin.reshape(shape)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1], v[..., 2]], axis=-1)


def test_quaternion_helpers_match_numpy_formulas_bit_for_bit():
    rng = np.random.default_rng(0)
    scale = lambda *shape: rng.normal(size=shape) * 10.0 ** rng.integers(-3, 3, shape)  # noqa: E731
    q, r, v, tips, tip_quats = scale(3000, 4), scale(3000, 4), scale(3000, 3), scale(300, 5, 3), scale(300, 5, 4)
    q[0, 1], q[1, 2], v[2, 0] = np.nan, -0.0, 0.0
    assert _same(quat.multiply(q, r), _reference_multiply(q, r))
    assert _same(quat.multiply(q[:300, None], tip_quats), _reference_multiply(q[:300, None], tip_quats))
    assert _same(quat.conjugate(q), q * np.array([1.0, -1.0, -1.0, -1.0]))
    assert _same(quat.rotate(q, v), _reference_rotate(q, v))
    assert _same(quat.rotate(q[5], v[5]), _reference_rotate(q[5], v[5]))
    assert _same(quat.rotate(q, np.array([1.0, 0.0, 0.0])), _reference_rotate(q, np.array([1.0, 0.0, 0.0])))
    assert _same(quat.norm(v), np.linalg.norm(v, axis=-1))
    assert _same(quat.distance(v[:300, None, :], tips), np.linalg.norm(v[:300, None, :] - tips, axis=-1))
    goal = np.array([0.0, 0.0, 0.9])
    assert _same(quat.distance(goal, v), np.linalg.norm(goal - v, axis=1))
    unit = q[2:] / np.linalg.norm(q[2:], axis=1, keepdims=True)
    assert _same(quat.angle(unit), 2.0 * np.arcsin(np.clip(np.linalg.norm(unit[:, 1:], axis=-1), 0.0, 1.0)))
    cos, sin = np.cos(v[:, 0]), np.sin(v[:, 0])
    assert _same(quat.rotate_yaw(v, cos, -sin), _reference_rotate_yaw(v, cos, -sin))
    assert _same(quat.rotate_yaw(tips, cos[:300], sin[:300]), _reference_rotate_yaw(tips, cos[:300], sin[:300]))


def _reference_observation(task) -> np.ndarray:
    """The observation as plain concatenated blocks (the layout documented on ``_ObservationPlan``)."""
    n, cfg, sensor = task.num_envs, task.config, task._sensor
    cos, sin = np.cos(task.hand_yaw), np.sin(task.hand_yaw)
    unyaw = quat.from_yaw(-task.hand_yaw)
    repose = lambda v: _reference_rotate_yaw(v, cos, -sin)  # noqa: E731
    tips = np.concatenate([repose(sensor("tip_pos").reshape(n, 5, 3)),
                           _reference_multiply(unyaw[:, None, :], sensor("tip_quat").reshape(n, 5, 4)),
                           repose(sensor("tip_linvel").reshape(n, 5, 3)),
                           repose(sensor("tip_angvel").reshape(n, 5, 3))], axis=2).reshape(n, 65)  # fmt: skip
    root_angles = task.sim.qpos[:, task.layout.root_qpos[3:6]].copy()
    root_angles[:, 0] -= task.hand_yaw
    obj_pos = repose(sensor("object_pos"))
    parts = [(sensor("hand_qpos") - task._joint_mid) / task._joint_half, tips, cfg.touch_scale * sensor("touch"),
             repose(sensor("hand_point")), root_angles, task.prev_action, obj_pos,
             repose(np.broadcast_to(task.goal, (n, 3))) - obj_pos]  # fmt: skip
    if cfg.obs_mode == "hyper":
        parts += [_reference_multiply(unyaw, sensor("object_quat")), repose(sensor("object_linvel")),
                  cfg.angvel_scale * repose(sensor("object_angvel")),
                  cfg.shape_code_scale * task.shape_codes]  # fmt: skip
    obs = np.concatenate(parts, axis=1, dtype=np.float32)
    return np.clip(obs, -cfg.obs_clip, cfg.obs_clip, out=obs)


def _reference_proposal_distance(task) -> tuple[np.ndarray, np.ndarray]:
    sensor, cfg = task._sensor, task.config
    obj_inv = sensor("object_quat") * np.array([1.0, -1.0, -1.0, -1.0])
    hand_in_obj = _reference_rotate(obj_inv, sensor("hand_point") - sensor("object_pos"))
    d_pos = np.abs(hand_in_obj - task.proposal_point).sum(axis=1)
    palm_in_obj = _reference_multiply(obj_inv, sensor("palm_quat"))
    offset = _reference_multiply(palm_in_obj, task.proposal_quat * np.array([1.0, -1.0, -1.0, -1.0]))
    d_rot = 2.0 * np.arcsin(np.clip(np.linalg.norm(offset[..., 1:], axis=-1), 0.0, 1.0))
    d_q = np.abs(sensor("hand_qpos") - task.proposal_qpos).sum(axis=1)
    w, th = cfg.proposal_weights, cfg.proposal_thresholds
    delta = np.where(task.has_proposal, w[0] * d_pos + w[1] * d_rot + w[2] * d_q, 0.0)
    match = ~task.has_proposal | ((d_pos <= th[0]) & (d_rot <= th[1]) & (d_q <= th[2]))
    return delta, match


def _reference_controls(task, act: np.ndarray) -> np.ndarray:
    lay, sim = task.layout, task.sim
    cos, sin = np.cos(task.hand_yaw), np.sin(task.hand_yaw)
    force, torque = _reference_rotate_yaw(act[:, 0:3], cos, sin), _reference_rotate_yaw(act[:, 3:6], cos, sin)
    velocity = sim.qvel[:, lay.root_qvel[0:3]]
    servo = task._force_gain * force + task._force_bias * velocity
    norm = np.linalg.norm(servo, axis=1, keepdims=True)
    capped = servo * np.minimum(1.0, task.scene.config.root_force_limit / np.maximum(norm, 1e-12))
    ctrl = sim.ctrl.copy()
    ctrl[:, lay.root_ctrl[0:3]] = (capped - task._force_bias * velocity) / task._force_gain
    ctrl[:, lay.root_ctrl[3:6]] = np.einsum("nij,nj->ni", sim.xaxis[:, lay.root_jnt[3:6]], torque)
    ctrl[:, lay.finger_ctrl] = lay.finger_low + 0.5 * (act[:, 6:] + 1.0) * (lay.finger_high - lay.finger_low)
    return ctrl


@pytest.mark.parametrize("variant, reward_mode", [("ResDexHyper", "stage2_hold"), ("ResDexBase", "base_hold")])
def test_observation_rewards_and_controls_equal_reference_formulas(variant, reward_mode):
    objects = primitive_objects()
    rng = np.random.default_rng(1)
    proposals = {o.name: [GraspProposal(rng.uniform(-0.05, 0.05, 3), q / np.linalg.norm(q), rng.uniform(0, 1, 22))
                          for q in rng.normal(size=(2, 4))] for o in objects[:3]}  # fmt: skip
    codes = {o.name: rng.normal(size=64) for o in objects}
    env = make_vec_env(variant, 10, objects, seed=0, proposals=proposals, shape_codes=codes, num_threads=1,
                       reward_mode=reward_mode, episode_length=15, random_initial_progress=True)  # fmt: skip
    task = env.task
    obs = env.reset()
    resets = 0
    for step in range(20):  # desynchronised episodes: auto-resets of a few envs at a time (new start yaws)
        act = np.clip(rng.normal(0.0, 0.7, (10, 24)), -1.0, 1.0)
        reference = _reference_observation(task)
        assert _same(task._observe(), reference)
        assert _same(obs, reference)  # what the step returned: only the reset envs' rows were recomputed
        delta, match = task._proposal_distance(task._object_pos(), task._sensor("hand_point"))
        ref_delta, ref_match = _reference_proposal_distance(task)
        assert _same(delta, ref_delta) and _same(match, ref_match)
        terms, _ = task._reward_terms(act)
        sensor = task._sensor
        ref_terms = reward_terms(reward_mode, GraspQuantities(
            object_pos=sensor("object_pos"), hand_point=sensor("hand_point"),
            tip_points=sensor("tip_point").reshape(-1, 5, 3), goal=task.goal, lift_action=act[:, 2],
            table_height=task.scene.config.table_height, rest_height=task.rest_height, proposal_delta=ref_delta,
            proposal_match=ref_match, object_speed=np.linalg.norm(sensor("object_linvel"), axis=1)))  # fmt: skip
        assert terms.keys() == ref_terms.keys() and all(_same(terms[t], ref_terms[t]) for t in terms)
        expected_ctrl = _reference_controls(task, act)
        task._apply_actions(act)
        assert _same(task.sim.ctrl, expected_ctrl)
        obs, _, dones, _ = env.step(act.astype(np.float32))
        resets += 0 < dones.sum() < len(dones)
    assert resets >= 2  # steps on which some, not all, envs reset


def test_cached_yaw_functions_follow_any_change_of_hand_yaw():
    env = make_vec_env("ResDexHyper", 4, seed=0, num_threads=1)
    env.reset()
    task = env.task
    env.set_attr("hand_yaw", 0.7, indices=[2])  # in place, behind the task's back
    task.hand_yaw[0] = -0.0  # a different bit pattern that compares equal
    cos, sin, unyaw = task._yaw_trig()
    assert _same(cos, np.cos(task.hand_yaw)) and _same(sin, np.sin(task.hand_yaw))
    assert _same(unyaw, quat.from_yaw(-task.hand_yaw))
    assert _same(task._observe(), _reference_observation(task))
