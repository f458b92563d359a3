"""The grasp-and-lift task on batched arrays: actions -> controls, observations, rewards, success and resets.

Everything is vectorised over envs; the only per-env Python work is drawing each reset env's random start
from its own generator, so that a batch of N envs seeded s, s+1, ... equals N single envs with those seeds.

Each reset draws one of the object's grasp proposals at random (the reference's ``random_prior``): the hand
starts yawed like that grasp and the stage-1 reward pulls towards it. Success is counted three ways: any time
within the goal sphere (the paper's), sustained (inside it for ``sustain_steps`` consecutive steps) and held
(inside it on the last step).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import mujoco
import numpy as np

from envs import quaternions as quat
from envs.backends import make_sim
from envs.config import DEFAULT_BACKEND, SceneConfig, TaskConfig
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal
from envs.rewards import PROPOSAL_WEIGHT, TERMS, GraspQuantities, reward_terms
from envs.scene import HAND_JOINTS, Scene

ACTION_DIM = 24
RESET_CLEARANCE = 0.002  # objects start 2 mm above the table and settle


def observation_dim(config: TaskConfig) -> int:
    """Width of the observation of ``config.obs_mode``."""
    base = 22 + 65 + 5 + 3 + 3 + ACTION_DIM + 3 + 3
    return base if config.obs_mode == "base" else base + 10 + config.shape_code_dim


@dataclass
class StepResult:
    """One batched step. ``terminal_obs`` holds the pre-reset observation of the envs in ``done``.
    ``grasp_distance`` is each env's grasp-pose quality so far this episode (the paper's D, NaN without a proposal).
    """

    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    done: np.ndarray
    terminal_obs: np.ndarray
    is_success: np.ndarray
    is_sustained: np.ndarray
    is_held: np.ndarray
    physics_reset: np.ndarray
    episode_return: np.ndarray
    episode_length: np.ndarray
    episode_terms: dict[str, np.ndarray]
    grasp_distance: np.ndarray


class GraspTask:
    """N grasp-and-lift envs.

    :param objects: the object of every env.
    :param task_config: observation / reward / episode settings.
    :param scene: a built scene to share (built from ``scene_config`` when omitted).
    :param scene_config: scene settings when ``scene`` is omitted.
    :param shape_codes: object name -> shape code (``shape_code_dim`` floats) for the hyper observation.
    :param proposals: object name -> its grasp proposals (a list, or one proposal); every reset draws one of
        them for the start yaw and the proposal reward. Objects without any start unyawed and get no proposal term.
    :param num_threads: physics threads (0: all CPUs).
    :param autoreset: reset finished envs inside ``step`` (VecEnv semantics) or leave them to ``reset``.
    :param backend: physics engine, ``mujoco`` (C MuJoCo, CPU threads) or ``warp`` (MuJoCo Warp, CUDA or CPU).
    :param device: warp device for the ``warp`` backend (None: CUDA when present, else the CPU).
    """

    def __init__(
        self,
        objects: Sequence[ObjectSpec],
        task_config: TaskConfig | None = None,
        scene: Scene | None = None,
        scene_config: SceneConfig | None = None,
        shape_codes: Mapping[str, np.ndarray] | None = None,
        proposals: Mapping[str, ProposalEntry] | None = None,
        num_threads: int = 0,
        autoreset: bool = True,
        backend: str = DEFAULT_BACKEND,
        device: str | None = None,
    ) -> None:
        self.config = task_config or TaskConfig()
        self.scene = scene or Scene(scene_config)
        self.backend = backend
        self.sim = make_sim(self.scene, objects, backend, num_threads, device)
        self.objects = list(objects)
        self.num_envs = n = len(objects)
        self.autoreset = autoreset
        self.layout = self.scene.layout
        cfg, scfg = self.config, self.scene.config
        self.goal = np.asarray(scfg.goal, dtype=float)
        self.term_names = TERMS[cfg.reward_mode]
        self.obs_dim = observation_dim(cfg)
        self.rest_height = np.array([self.scene.rest_height(o) for o in objects])
        self.shape_codes = _shape_code_table(objects, shape_codes or {}, cfg.shape_code_dim)
        self._proposal_bank = _ProposalBank(objects, proposals or {})
        self.has_proposal = self._proposal_bank.count > 0
        self.proposal_point = np.zeros((n, 3))
        self.proposal_quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
        self.proposal_qpos = np.zeros((n, len(HAND_JOINTS)))
        self.proposal_index = np.zeros(n, dtype=np.int64)
        self._joint_mid = 0.5 * (self.layout.hand_joint_high + self.layout.hand_joint_low)
        self._joint_half = 0.5 * (self.layout.hand_joint_high - self.layout.hand_joint_low)
        self._start_palm_quat = self._read_start_palm_quat()
        root_lin = self.layout.root_ctrl[0:3]
        self._force_gain = self.scene.model.actuator_gainprm[root_lin, 0].copy()
        self._force_bias = self.scene.model.actuator_biasprm[root_lin, 2].copy()  # -damping: force += bias * vel
        # per-env state
        self.progress = np.zeros(n, dtype=np.int64)
        self.prev_action = np.zeros((n, ACTION_DIM))
        self.hand_yaw = np.zeros(n)
        self._yaw_key = self.hand_yaw.tobytes()  # hand_yaw's bytes that _yaw_values belong to
        self._yaw_values = _yaw_functions(self.hand_yaw)
        self.success = np.zeros(n, dtype=bool)
        self.sustained = np.zeros(n, dtype=bool)
        self.goal_streak = np.zeros(n, dtype=np.int64)
        self.episode_return = np.zeros(n)
        self.episode_terms = np.zeros((n, len(self.term_names)))
        #: the paper's grasp-pose quality D = sum_t PROPOSAL_WEIGHT * proposal_delta_t so far this episode, in every
        #: reward mode (whether or not it has a proposal term); 0 for envs without a proposal
        self.episode_grasp_distance = np.zeros(n)
        self.physics_resets = np.zeros(n, dtype=np.int64)
        self._rngs = [np.random.default_rng(i) for i in range(n)]
        self._first_reset = True
        self._plan = _ObservationPlan(self.layout.sensor, self.config)
        self._obs = np.zeros((n, self.obs_dim), dtype=np.float32)

    def set_reward_mode(self, mode: str) -> None:
        """Switch the reward (e.g. stage 1 -> stage 2); episode term sums restart with the new terms."""
        self.config = replace(self.config, reward_mode=mode)  # validates the mode
        self.term_names = TERMS[mode]
        self.episode_terms = np.zeros((self.num_envs, len(self.term_names)))

    # ------------------------------------------------------------------ seeding and resets
    def seed(self, seeds: Sequence[int | None]) -> None:
        """Seed each env's generator (None draws fresh entropy)."""
        self._rngs = [np.random.default_rng(s) for s in seeds]

    def reset(self, ids: np.ndarray | None = None) -> np.ndarray:
        """Reset envs ``ids`` (all when None) and return the full observation batch."""
        ids = np.arange(self.num_envs) if ids is None else np.asarray(ids)
        self._reset_envs(ids)
        self._obs = self._observe()
        return self._obs.copy()

    def _reset_envs(self, ids: np.ndarray) -> None:
        if len(ids) == 0:
            return
        lay, scfg = self.layout, self.scene.config
        object_yaw = np.array([self._rngs[i].uniform(-np.pi, np.pi) for i in ids])
        counts = self._proposal_bank.count[ids]
        picks = np.array([self._rngs[i].integers(c) if c else 0 for i, c in zip(ids, counts)], dtype=np.int64)
        self._select_proposals(ids, picks)
        hand_yaw = object_yaw + self._proposal_yaw(ids)
        qpos = np.tile(self.scene.model.qpos0, (len(ids), 1))
        qpos[:, lay.root_qpos[3]] = hand_yaw
        obj = lay.object_qpos
        qpos[:, obj : obj + 3] = [0.0, 0.0, 0.0]
        qpos[:, obj + 2] = scfg.table_height + self.rest_height[ids] + RESET_CLEARANCE
        qpos[:, obj + 3 : obj + 7] = quat.from_yaw(object_yaw)
        self.sim.reset(ids, qpos)
        self.hand_yaw[ids] = hand_yaw if self.config.repose_z else 0.0
        self.prev_action[ids] = 0.0
        self.success[ids] = False
        self.sustained[ids] = False
        self.goal_streak[ids] = 0
        self.episode_return[ids] = 0.0
        self.episode_terms[ids] = 0.0
        self.episode_grasp_distance[ids] = 0.0
        if self._first_reset and self.config.random_initial_progress:
            self.progress[ids] = [self._rngs[i].integers(0, self.config.episode_length) for i in ids]
        else:
            self.progress[ids] = 0
        self._first_reset = False

    def _select_proposals(self, ids: np.ndarray, picks: np.ndarray) -> None:
        bank = self._proposal_bank
        self.proposal_index[ids] = picks
        self.proposal_point[ids] = bank.point[ids, picks]
        self.proposal_quat[ids] = bank.quat[ids, picks]
        self.proposal_qpos[ids] = bank.qpos[ids, picks]

    def _proposal_yaw(self, ids: np.ndarray) -> np.ndarray:
        """Yaw of each proposal's palm relative to the start palm orientation (0 where none)."""
        rel = quat.multiply(self.proposal_quat[ids], quat.conjugate(self._start_palm_quat))
        x_axis = quat.rotate(rel, np.array([1.0, 0.0, 0.0]))
        return np.where(self.has_proposal[ids], np.arctan2(x_axis[:, 1], x_axis[:, 0]), 0.0)

    def _read_start_palm_quat(self) -> np.ndarray:
        data = mujoco.MjData(self.scene.model)
        mujoco.mj_forward(self.scene.model, data)
        return data.sensordata[self.layout.sensor["palm_quat"]].copy()

    def _yaw_trig(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """cos and sin (N,) of ``hand_yaw`` and the un-yawing quaternions ``from_yaw(-hand_yaw)`` (N, 4).

        Cached on the exact bytes of ``hand_yaw``, which changes only at resets: the transcendentals cost as much
        as the rest of an observation."""
        key = self.hand_yaw.tobytes()
        if key != self._yaw_key:
            self._yaw_key, self._yaw_values = key, _yaw_functions(self.hand_yaw)
        return self._yaw_values

    # ------------------------------------------------------------------ stepping
    def validate_actions(self, actions: np.ndarray) -> np.ndarray:
        """Check shape, dtype and finiteness; return float64 actions clipped to [-1, 1]."""
        arr = np.asarray(actions)
        if arr.shape != (self.num_envs, ACTION_DIM):
            raise ValueError(f"actions must have shape ({self.num_envs}, {ACTION_DIM}), got {arr.shape}")
        if not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(f"actions must be floating point, got dtype {arr.dtype}")
        finite = np.isfinite(arr)
        if not finite.all():
            bad = np.argwhere(~finite)[0]
            raise ValueError(f"actions contain NaN or inf (first at env {bad[0]}, dim {bad[1]})")
        return np.clip(arr.astype(np.float64), -1.0, 1.0)

    def step(self, actions: np.ndarray) -> StepResult:
        """Apply validated actions for one control step and return the batched result."""
        act = self.validate_actions(actions)
        self._apply_actions(act)
        failed = self.sim.step(self.scene.config.substeps)
        prev_obs = self._obs
        self.prev_action[:] = act
        self.progress += 1
        obs = self._observe()
        terms, proposal_delta = self._reward_terms(act)
        reward = np.sum(list(terms.values()), axis=0)
        reward[failed] = 0.0
        at_goal = (quat.distance(self.goal, self._object_pos()) <= self.config.success_tolerance) & ~failed
        self.success |= at_goal
        self.goal_streak = np.where(at_goal, self.goal_streak + 1, 0)
        self.sustained |= self.goal_streak >= self.config.sustain_steps
        self.episode_return += reward
        self.episode_terms += np.stack([terms[t] for t in self.term_names], axis=1)
        self.episode_grasp_distance += PROPOSAL_WEIGHT * proposal_delta
        truncated = (self.progress >= self.config.episode_length) | failed
        terminated = np.zeros(self.num_envs, dtype=bool)
        done = truncated | terminated
        self.physics_resets += failed
        done_ids = np.flatnonzero(done)
        terminal_obs = np.where(failed[done_ids, None], prev_obs[done_ids], obs[done_ids])
        result = StepResult(
            obs=obs, reward=reward.astype(np.float32), terminated=terminated, truncated=truncated, done=done,
            terminal_obs=terminal_obs, is_success=self.success.copy(), is_sustained=self.sustained.copy(),
            is_held=at_goal,
            physics_reset=failed, episode_return=self.episode_return.copy(), episode_length=self.progress.copy(),
            episode_terms={t: self.episode_terms[:, j].copy() for j, t in enumerate(self.term_names)},
            grasp_distance=np.where(self.has_proposal, self.episode_grasp_distance, np.nan),
        )  # fmt: skip
        if self.autoreset and len(done_ids):
            self._reset_envs(done_ids)
            obs = self._observe_after_reset(obs, done_ids)
            result.obs = obs
        self._obs = obs
        return result

    def _apply_actions(self, act: np.ndarray) -> None:
        """Root: world-frame force/torque commands (rotated back from the start-yaw frame) to the servo joints;
        fingers: absolute targets mapped linearly onto each actuator's range.

        The servo force ``gain * ctrl - damping * velocity`` is capped here on its norm (``root_force_limit``),
        not per world axis, so the physics does not depend on the hidden start yaw. The rotational servo's caps
        act on the Euler hinges below the yaw hinge, whose torques are the same at every start yaw."""
        lay = self.layout
        cos, sin, _ = self._yaw_trig()
        # the linear servo per world axis, on (N,) component arrays
        force = (*quat.yaw_components(act[:, 0], act[:, 1], cos, sin), act[:, 2])
        velocity = [self.sim.qvel[:, lay.root_qvel[k]] for k in range(3)]
        servo = [self._force_gain[k] * force[k] + self._force_bias[k] * velocity[k] for k in range(3)]
        scale = np.minimum(1.0, self.scene.config.root_force_limit / np.maximum(quat.length(*servo), 1e-12))
        ctrl = self.sim.ctrl
        for k in range(3):
            ctrl[:, lay.root_ctrl[k]] = (servo[k] * scale - self._force_bias[k] * velocity[k]) / self._force_gain[k]
        # generalized torque of each root hinge = its world axis . world torque
        torque = quat.rotate_yaw(act[:, 3:6], cos, sin)
        hinge_axes = self.sim.xaxis[:, lay.root_jnt[3:6]]
        ctrl[:, lay.root_ctrl[3:6]] = np.einsum("nij,nj->ni", hinge_axes, torque)
        ctrl[:, lay.finger_ctrl] = lay.finger_low + 0.5 * (act[:, 6:] + 1.0) * (lay.finger_high - lay.finger_low)

    # ------------------------------------------------------------------ observations
    def _sensor(self, name: str) -> np.ndarray:
        return self.sim.sensordata[:, self.layout.sensor[name]]

    def _object_pos(self) -> np.ndarray:
        return self._sensor("object_pos")

    def _observe(self, ids: np.ndarray | None = None) -> np.ndarray:
        """The observation batch (layout: ``_ObservationPlan``) of envs ``ids`` (all when None), written block by
        block into one float32 array.

        Values are computed in float64 by each block's formula and rounded to float32 once, when written: the same
        numbers as concatenating the float64 blocks into float32. The 3-vectors and quaternions are gathered as
        (components, N) rows of the transposed sensordata, so that every op runs along the env axis. Each env's
        row depends on that env's state alone, so the rows of ``ids`` equal those rows of the whole batch."""
        cfg, plan = self.config, self._plan
        rows = slice(None) if ids is None else ids
        data, qpos = self.sim.sensordata[rows], self.sim.qpos[rows]
        sensors = data.T
        n = len(data)
        cos, sin, unyaw = (v[rows] for v in self._yaw_trig())
        obs = np.empty((n, plan.width), dtype=np.float32)
        obs_t = obs.T
        # every 3-vector to the start-yaw frame (rotation by -yaw)
        x, y, z = sensors[plan.vector_sensor.T]  # each (K, N)
        x, y = quat.yaw_components(x, y, cos, -sin)
        if cfg.obs_mode == "hyper":
            for component in (x, y, z):
                component[plan.ANGVEL] *= cfg.angvel_scale
        for k, component in enumerate((x, y, z)):
            obs_t[plan.vector_obs[:, k]] = component
        goal_x, goal_y = quat.yaw_components(self.goal[0], self.goal[1], cos, -sin)
        np.subtract(goal_x, x[plan.OBJECT_POS], out=obs_t[plan.goal.start])
        np.subtract(goal_y, y[plan.OBJECT_POS], out=obs_t[plan.goal.start + 1])
        np.subtract(self.goal[2], z[plan.OBJECT_POS], out=obs_t[plan.goal.start + 2])
        for k, component in enumerate(quat.multiply_components(unyaw.T, sensors[plan.quat_sensor.T])):
            obs_t[plan.quat_obs[:, k]] = component
        sensor = self.layout.sensor
        np.divide(data[:, sensor["hand_qpos"]] - self._joint_mid, self._joint_half, out=obs[:, plan.hand_qpos])
        np.multiply(cfg.touch_scale, data[:, sensor["touch"]], out=obs[:, plan.touch])
        root_qpos = qpos[:, self.layout.root_qpos[3:6]]
        np.subtract(root_qpos[:, 0], self.hand_yaw[rows], out=obs_t[plan.root_angles.start])
        obs[:, plan.root_angles.start + 1 : plan.root_angles.stop] = root_qpos[:, 1:]
        obs[:, plan.prev_action] = self.prev_action[rows]
        if cfg.obs_mode == "hyper":
            np.multiply(cfg.shape_code_scale, self.shape_codes[rows], out=obs[:, plan.shape_code])
        return np.clip(obs, -cfg.obs_clip, cfg.obs_clip, out=obs)

    def _observe_after_reset(self, obs: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The batch's observation once envs ``ids`` have been reset, from ``obs`` of just before: only their rows
        are recomputed (the others' state, hence their rows, did not change)."""
        obs[ids] = self._observe(ids)
        return obs

    # ------------------------------------------------------------------ reward
    def _reward_terms(self, act: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The reward terms of the current mode, and the proposal distance (N,) they were computed from."""
        cfg = self.config
        obj_pos = self._object_pos()
        hand_point = self._sensor("hand_point")
        delta, match = self._proposal_distance(obj_pos, hand_point)
        # (N, 5, 3) with the env axis contiguous, so the per-component distance ops run along it
        tips = np.ascontiguousarray(self.sim.sensordata.T[self.layout.sensor["tip_point"]])
        speed = quat.norm(self._sensor("object_linvel")) if "hold" in self.term_names else None
        quantities = GraspQuantities(
            object_pos=obj_pos, hand_point=hand_point, tip_points=tips.reshape(5, 3, -1).transpose(2, 0, 1),
            goal=self.goal, lift_action=act[:, 2], table_height=self.scene.config.table_height,
            rest_height=self.rest_height, proposal_delta=delta, proposal_match=match, object_speed=speed,
        )  # fmt: skip
        return reward_terms(cfg.reward_mode, quantities), delta

    def _proposal_distance(self, obj_pos: np.ndarray, hand_point: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weighted L1 distance of the hand to its proposal in the object frame, and whether it is close."""
        cfg = self.config
        # on (N,) component arrays (see envs.quaternions)
        obj_inv = quat.conjugate_components(self._sensor("object_quat").T)
        hand_in_obj = quat.rotate_components(obj_inv, [hand_point[:, k] - obj_pos[:, k] for k in range(3)])
        d_xyz = [np.abs(hand_in_obj[k] - self.proposal_point[:, k]) for k in range(3)]
        d_pos = d_xyz[0] + d_xyz[1] + d_xyz[2]  # the order of a sum over the last axis
        palm_in_obj = quat.multiply_components(obj_inv, self._sensor("palm_quat").T)
        offset = quat.multiply_components(palm_in_obj, quat.conjugate_components(self.proposal_quat.T))
        d_rot = quat.angle(np.stack(offset, axis=-1))
        d_q = np.abs(self._sensor("hand_qpos") - self.proposal_qpos).sum(axis=1)
        w, th = cfg.proposal_weights, cfg.proposal_thresholds
        delta = np.where(self.has_proposal, w[0] * d_pos + w[1] * d_rot + w[2] * d_q, 0.0)
        match = ~self.has_proposal | ((d_pos <= th[0]) & (d_rot <= th[1]) & (d_q <= th[2]))
        return delta, match


def _yaw_functions(yaw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.cos(yaw), np.sin(yaw), quat.from_yaw(-yaw)


class _ObservationPlan:
    """Where each observation block comes from and goes: sensordata columns and observation columns.

    Layout (``observation_dim``): hand joints (22, normalised to [-1, 1]) | per fingertip position, quaternion,
    linear and angular velocity (5 x 13) | touch (5) | hand point (3) | root angles (3) | previous action (24) |
    object position (3) | goal - object position (3) | hyper only: object quaternion (4), linear velocity (3),
    angular velocity (3), shape code. Positions, velocities and quaternions are in the start-yaw frame.
    """

    OBJECT_POS = 0  # index among the reposed vectors
    ANGVEL = 1  # the object's angular velocity (hyper)

    def __init__(self, sensor: Mapping[str, slice], config: TaskConfig) -> None:
        hyper = config.obs_mode == "hyper"
        self.width = observation_dim(config)
        self.hand_qpos, self.touch, self.root_angles = slice(0, 22), slice(87, 92), slice(95, 98)
        self.prev_action, self.goal = slice(98, 98 + ACTION_DIM), slice(125, 128)
        self.shape_code = slice(138, self.width)
        tip = lambda finger, offset: 22 + 13 * finger + offset  # noqa: E731  (obs column in a fingertip's block)
        # (sensor block, item in it, first observation column), OBJECT_POS and ANGVEL first
        vectors = [("object_pos", 0, 122)] + [("object_angvel", 0, 135)] * hyper + [("hand_point", 0, 92)]
        vectors += [(name, f, tip(f, offset)) for f in range(5)
                    for name, offset in (("tip_pos", 0), ("tip_linvel", 7), ("tip_angvel", 10))]  # fmt: skip
        vectors += [("object_linvel", 0, 132)] * hyper
        quats = [("tip_quat", f, tip(f, 3)) for f in range(5)] + [("object_quat", 0, 128)] * hyper

        def sensor_columns(entries: list[tuple[str, int, int]], width: int) -> np.ndarray:
            return np.array([np.arange(width) + sensor[name].start + width * item for name, item, _ in entries])

        def obs_columns(entries: list[tuple[str, int, int]], width: int) -> np.ndarray:
            return np.array([np.arange(width) + column for *_, column in entries])

        self.vector_sensor, self.vector_obs = sensor_columns(vectors, 3), obs_columns(vectors, 3)  # (K, 3)
        self.quat_sensor, self.quat_obs = sensor_columns(quats, 4), obs_columns(quats, 4)  # (Q, 4)


def _shape_code_table(objects: Sequence[ObjectSpec], codes: Mapping[str, np.ndarray], dim: int) -> np.ndarray:
    table = np.zeros((len(objects), dim))
    for i, obj in enumerate(objects):
        if obj.name in codes:
            code = np.asarray(codes[obj.name], dtype=float)
            if code.shape != (dim,):
                raise ValueError(f"shape code of {obj.name!r} has shape {code.shape}, expected ({dim},)")
            table[i] = code
    return table


ProposalEntry = GraspProposal | Sequence[GraspProposal]


class _ProposalBank:
    """Every env's candidate proposals as padded arrays ``(N, P, ...)``, with ``count`` (N,) valid rows each."""

    def __init__(self, objects: Sequence[ObjectSpec], proposals: Mapping[str, ProposalEntry]) -> None:
        lists = []
        for obj in objects:
            entry = proposals.get(obj.name)
            lists.append([entry] if isinstance(entry, GraspProposal) else list(entry or []))
        n, width = len(objects), max([len(items) for items in lists] + [1])
        self.count = np.array([len(items) for items in lists], dtype=np.int64)
        self.point = np.zeros((n, width, 3))
        self.quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, width, 1))
        self.qpos = np.zeros((n, width, len(HAND_JOINTS)))
        for i, items in enumerate(lists):
            for j, prop in enumerate(items):
                self.point[i, j], self.quat[i, j], self.qpos[i, j] = prop.hand_point, prop.palm_quat, prop.hand_qpos
