"""Scene and task parameters, kept apart from the code that uses them (values follow the ResDex reference)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class SceneConfig:
    """Physics and scene constants.

    :param timestep: physics step, seconds (reference: 1/60 with 2 PhysX substeps; here 1/120 x 2 substeps).
    :param substeps: physics steps per control step (60 Hz control).
    :param solver_iterations: MuJoCo solver iterations.
    :param table_height: world z of the table top, metres (the reference's 0.6).
    :param goal: the fixed lift goal, 0.3 m above the table top.
    :param hand_start: initial world position of the root pivot (palm centre).
    :param root_force_per_action: N per unit of actions[0:3] (reference 833.3).
    :param root_torque_per_action: N m per unit of actions[3:6] (reference 1.667).
    :param root_damping_per_mass: the reference's 100/s linear and angular damping.
    :param root_force_limit: cap on the norm of the root servo force, N (applied by the task, the same at every
        start yaw); bounds how hard the hand can press on an object.
    :param root_torque_limit: cap on the root servo torque, N m.
:param object_solimp: MuJoCo solimp of the object's contacts (it takes priority over the other geom's).
    :param primitive_slots: primitive geom slots on the object body.
    :param hull_slots: convex-hull mesh slots on the object body (0 by default: MuJoCo's mesh BVH size depends on
        the hull's shape, so objects made of hulls share one batch only when their BVHs happen to match).
    :param hull_vertices: vertices per hull slot (every hull is resampled to exactly this many).
    """

    timestep: float = 1.0 / 120.0
    substeps: int = 2
    solver_iterations: int = 20
    table_height: float = 0.6
    goal: tuple[float, float, float] = (0.0, 0.0, 0.9)
    hand_start: tuple[float, float, float] = (0.0, 0.0, 0.8)
    root_force_per_action: float = 833.3
    root_torque_per_action: float = 1.667
    root_damping_per_mass: float = 100.0
    root_force_limit: float = 30.0
    root_torque_limit: float = 3.0
    object_solimp: tuple[float, float, float, float, float] = (0.9, 0.95, 0.001, 0.5, 2.0)
    primitive_slots: int = 6
    hull_slots: int = 0
    hull_vertices: int = 32


OBS_MODES = ("base", "hyper")
#: Physics engines behind the task: C MuJoCo's ``mujoco.batch.Batch`` (``envs.sim``) or MuJoCo Warp (``envs.warp_sim``).
BACKENDS = ("mujoco", "warp")
DEFAULT_BACKEND = BACKENDS[0]
REWARD_MODES = ("base", "base_hold", "stage1", "stage2", "stage2_hold")


@dataclass(frozen=True)
class TaskConfig:
    """Episode, observation and reward settings.

    :param obs_mode: ``base`` (proprioception, object position, previous action) or ``hyper`` (adds object
        rotation, velocities and a shape-code slot).
    :param reward_mode: ``base`` (distance shaping + proposal), ``base_hold`` (ours: ``base`` plus the ``hold``
        term), ``stage1`` (hyper-policy, proposal term),
        ``stage2`` (the paper's loosened reward: no proposal, gated terms) or ``stage2_hold`` (ours: stage 2 plus a
        term for keeping the object still inside the goal sphere; see ``envs.rewards``).
    :param episode_length: control steps per episode (200 = 3.33 s at 60 Hz).
    :param success_tolerance: goal distance counted as success, metres.
    :param sustain_steps: consecutive steps inside the goal sphere that count as sustained success (10 steps =
        1/6 s: longer than a fly-through at lifting speed, which crosses the 10 cm sphere in 2-5 steps).
    :param shape_code_dim: width of the shape-code slot in the hyper observation.
    :param shape_code_scale: factor applied to shape codes (the reference multiplies pc_feat by 0.1).
    :param repose_z: express observations in the frame of the hand's start yaw, as the reference does.
    :param random_initial_progress: desynchronise envs on the very first reset (reference ``random_time``); on in
        every training preset, off in evaluation.
    :param obs_clip: observations are clipped to +/- this.
    :param touch_scale: factor on fingertip touch forces (N) in the observation.
    :param angvel_scale: factor on object angular velocity in the observation.
    :param proposal_weights: (position, rotation, joints) weights of the proposal distance.
    :param proposal_thresholds: (position, rotation, joints) thresholds of the proposal flags.
    """

    obs_mode: str = "base"
    reward_mode: str = "base"
    episode_length: int = 200
    success_tolerance: float = 0.05
    sustain_steps: int = 10
    shape_code_dim: int = 64
    shape_code_scale: float = 0.1
    repose_z: bool = True
    random_initial_progress: bool = False
    obs_clip: float = 5.0
    touch_scale: float = 0.1
    angvel_scale: float = 0.2
    proposal_weights: tuple[float, float, float] = (0.6, 0.04, 0.1)
    proposal_thresholds: tuple[float, float, float] = (0.4, 1.0, 6.0)

    def __post_init__(self) -> None:
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode {self.obs_mode!r} is not one of {OBS_MODES}")
        if self.reward_mode not in REWARD_MODES:
            raise ValueError(f"reward_mode {self.reward_mode!r} is not one of {REWARD_MODES}")
        if self.sustain_steps < 1:
            raise ValueError("sustain_steps must be at least 1")
        if self.episode_length < 1:
            raise ValueError("episode_length must be at least 1")

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> TaskConfig:
        """Build from keyword options, naming any unknown key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown task option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)  # type: ignore[arg-type]
