"""Grasp proposals generated and validated in the simulation (our stand-in for DexGraspNet's grasp sets).

For every object a grid of candidate top grasps is drawn and all of them run in one batched simulation, the
same scripted motion as ``envs.scripted`` generalised per env: hover above the aim point, descend to it, close
the fingers, lift, hold. A candidate is valid when the object ends at least ``lift_threshold`` above its start
and still sits in the hand. The proposal kept for a valid candidate is the hand state at the end of the closing
phase, just before the lift, in exactly the terms ``GraspTask._proposal_distance`` compares: the reference hand
point and the palm orientation in the object frame, and the 22 hand joint angles.

A candidate varies
- the hand's yaw about the object (the hand always comes from above, palm down);
- the aim point: the middle, or along the principal horizontal axis of an elongated object (a handle or one end),
  or on the rim of an object wider than the hand can span (a bowl's wall);
- where the object sits in the hand (the grasp centre of this hand lies ahead of and thumb-side of the hand point);
- how deep the hand point descends below the object's top;
- the finger closure: ``power`` (the scripted grasp), ``pinch`` (fingertips against an opposed thumb) or
  ``wrap`` (fully curled fingers, thumb swung under the palm).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from envs import quaternions as quat
from envs.config import SceneConfig, TaskConfig
from envs.objects.spec import ObjectSpec, object_bounds, object_support
from envs.proposals import GraspProposal
from envs.scene import FINGER_ACTUATORS, Scene
from envs.scripted import LIFT_ACTION, MAX_APPROACH_ACTION, POSITION_GAIN, closed_finger_targets, finger_actions
from envs.task import ACTION_DIM, GraspTask

_FOUR_FINGERS = ("FF", "MF", "RF", "LF")

#: Finger closures besides ``power`` (which is ``envs.scripted.closed_finger_targets``): actuator -> joint target,
#: radians; actuators not named stay open (0 clipped to their range). Chosen on the primitive objects: ``pinch``
#: was the only closure that held the sphere, ``wrap`` held the lying capsule and the long box most often.
CLOSURE_TARGETS: Mapping[str, Mapping[str, float]] = {
    # half-flexed fingers meet the thumb swung fully under the palm: fingertip-to-thumb opposition
    "pinch": {**{f"{f}J2": 1.0 for f in _FOUR_FINGERS}, **{f"{f}J1": 1.0 for f in _FOUR_FINGERS},
              "THJ4": 1.0, "THJ3": 1.2, "THJ1": 0.0, "THJ0": -0.3},
    # fully curled fingers, thumb half opposed and bent at its tip: encloses the object
    "wrap": {**{f"{f}J2": 1.57 for f in _FOUR_FINGERS}, **{f"{f}J1": 1.57 for f in _FOUR_FINGERS},
             "THJ4": 0.6, "THJ3": 1.2, "THJ1": 0.5, "THJ0": -0.5},
}  # fmt: skip
CLOSURES = ("power", *CLOSURE_TARGETS)


@dataclass(frozen=True)
class SamplerConfig:
    """How candidates are drawn, simulated and judged. Lengths are metres, angles radians, durations control steps.

    :param candidates_per_object: candidate grasps simulated per object.
    :param lift_threshold: the object must end at least this far above its start height to count as lifted.
    :param hold_distance: ... and its origin at most this far from the hand point (still in the hand).
    :param seed: base seed; candidates and env seeds derive from it and the object's name only.
    :param yaw_range: hand yaw about the object is drawn stratified over this range, starting at the object's
        principal axis (2 pi: all around; the hand is not symmetric, so pi would miss thumb-side variants).
    :param axis_offsets: aim-point offsets along the principal horizontal axis, as fractions of the object's half
        length along it; nonzero ones are used only for elongated objects.
    :param elongation_ratio: length / width along the principal axes above which an object counts as elongated.
    :param wide_half_width: objects at least this wide (half width) along their narrow axis are too wide to
        enclose: every candidate aims at their rim instead, in a random direction (bowls, pans, wide boxes).
    :param rim_fraction: rim aim points sit at this fraction of the object's extent in their direction.
    :param grasp_centre: (ahead, thumb-side) position of the aim point relative to the hand point in the hand's
        yaw frame: the fingers curl back to about 1 cm behind the hand point and the thumb closes from its side, so
        objects are held best a few centimetres ahead of and thumb-side of it (measured on the primitives).
    :param grasp_centre_jitter: uniform jitter, +/- metres, of each ``grasp_centre`` coordinate per candidate.
    :param approach_depths: depths of the hand point below the object's top at the end of the approach (the
        palm then rests on the top; deeper lets the fingertips reach past a round object's equator: adding 0.04 to
        (0, 0.02) took the small embedded set plus the primitives from 87 % to 92 % of objects with a proposal).
    :param max_depth_fraction: depths are capped at this fraction of the object's height (flat objects go only
        slightly lower).
    :param closures: finger closure variants to cycle through (names in ``CLOSURES``).
    :param hover_clearance: height above the object's top of the first half of the approach, so that the hand
        moves sideways before it descends.
    :param approach_steps: steps of the approach (hover, then descend); the hand point is within ~3 mm of its
        target after 40 (the scripted grasp's 70 add nothing but time).
    :param close_steps: steps over which the finger targets ramp from open to closed.
    :param lift_steps: steps of constant upward root action (50 lift held objects by 0.15-0.2 m).
    :param hold_steps: steps with the hand still after the lift, so that a slipping object has time to fall
        (on the primitives, 25 rather than 15 rejects ~10 % more candidates: the longer hold is the stricter test).
    :param lift_action: the vertical root action while lifting (the scripted grasp's).
    :param position_gain: approach action per metre of hand point error.
    :param max_approach_action: cap of each approach action component.
    :param num_threads: physics threads (0: every CPU).
    """

    candidates_per_object: int = 32
    lift_threshold: float = 0.1
    hold_distance: float = 0.12
    seed: int = 0
    yaw_range: float = 2.0 * np.pi
    axis_offsets: tuple[float, ...] = (0.0, -0.6, 0.6)
    elongation_ratio: float = 1.3
    wide_half_width: float = 0.06
    rim_fraction: float = 0.85
    grasp_centre: tuple[float, float] = (0.04, 0.025)
    grasp_centre_jitter: float = 0.01
    approach_depths: tuple[float, ...] = (0.0, 0.02, 0.04)
    max_depth_fraction: float = 0.6
    closures: tuple[str, ...] = CLOSURES
    hover_clearance: float = 0.05
    approach_steps: int = 40
    close_steps: int = 30
    lift_steps: int = 50
    hold_steps: int = 25
    lift_action: float = LIFT_ACTION
    position_gain: float = POSITION_GAIN
    max_approach_action: float = MAX_APPROACH_ACTION
    num_threads: int = 0

    def __post_init__(self) -> None:
        if self.candidates_per_object < 1:
            raise ValueError("candidates_per_object must be at least 1")
        unknown = sorted(set(self.closures) - set(CLOSURES))
        if unknown or not self.closures:
            raise ValueError(f"closures must be a non-empty subset of {CLOSURES}, got unknown {unknown}")
        if not self.axis_offsets or not self.approach_depths:
            raise ValueError("axis_offsets and approach_depths need at least one value each")
        if min(self.approach_steps, self.close_steps, self.lift_steps) < 1 or self.hold_steps < 0:
            raise ValueError("phase lengths must be positive (hold_steps may be 0)")

    @property
    def total_steps(self) -> int:
        """Control steps of one candidate's run."""
        return self.approach_steps + self.close_steps + self.lift_steps + self.hold_steps

    @property
    def closed_step(self) -> int:
        """Index of the step after which the fingers are closed and the proposal is recorded."""
        return self.approach_steps + self.close_steps - 1


@dataclass(frozen=True)
class CandidateSet:
    """Candidate grasps as arrays, one row each (all in the object's frame or the hand's yaw frame).

    :param object_index: (N,) index of each candidate's object in the list it was planned for.
    :param yaw: (N,) hand yaw relative to the object's yaw.
    :param aim: (N, 2) aim point in the object frame (x, y); the hand point descends above it.
    :param hand_shift: (N, 2) hand point minus aim point in the hand's yaw frame (ahead, thumb-side).
    :param top: (N,) height of the object's top above its origin when upright.
    :param depth: (N,) hand point depth below the object's top at the end of the approach.
    :param closure: (N,) index into ``CLOSURES``.
    :param seed: (N,) seed of the env's start-state generator.
    """

    object_index: np.ndarray
    yaw: np.ndarray
    aim: np.ndarray
    hand_shift: np.ndarray
    top: np.ndarray
    depth: np.ndarray
    closure: np.ndarray
    seed: np.ndarray

    def __len__(self) -> int:
        return len(self.yaw)

    def take(self, rows: np.ndarray | Sequence[int] | slice) -> CandidateSet:
        """The candidates in ``rows``."""
        return CandidateSet(**{name: value[rows] for name, value in vars(self).items()})

    @staticmethod
    def concatenate(parts: Sequence[CandidateSet]) -> CandidateSet:
        """All candidates of ``parts``, in order."""
        names = vars(parts[0]).keys()
        return CandidateSet(**{name: np.concatenate([vars(p)[name] for p in parts]) for name in names})


@dataclass
class GraspOutcome:
    """What happened to each candidate of a batch.

    :param lift: (N,) object height gain at the end of the run, metres (NaN where the physics failed).
    :param valid: (N,) lifted by the threshold, still in the hand, physics sound.
    :param slip: (N,) how far the object moved in the palm frame between the closed fingers and the end, metres.
    :param hand_point: (N, 3) recorded hand point in the object frame.
    :param palm_quat: (N, 4) recorded palm orientation in the object frame (unit, w >= 0).
    :param hand_qpos: (N, 22) recorded hand joint angles, clipped to the joint limits.
    """

    lift: np.ndarray
    valid: np.ndarray
    slip: np.ndarray
    hand_point: np.ndarray
    palm_quat: np.ndarray
    hand_qpos: np.ndarray

    def proposal(self, row: int) -> GraspProposal:
        """The recorded proposal of candidate ``row``."""
        return GraspProposal(self.hand_point[row].copy(), self.palm_quat[row].copy(), self.hand_qpos[row].copy())


@dataclass
class SamplingReport:
    """Validated proposals and per-object statistics, keyed by object name.

    :param proposals: validated proposals, best (least slip while lifted, then highest lift) first.
    :param candidates: the candidates that produced them, row i <-> ``proposals[name][i]`` (to replay a grasp).
    :param tried: candidates simulated.
    :param lifted: candidates validated.
    :param best_lift: largest final height gain over the object's candidates, metres (validated or not; 0 when
        the physics failed in every one).
    """

    proposals: dict[str, list[GraspProposal]] = field(default_factory=dict)
    candidates: dict[str, CandidateSet] = field(default_factory=dict)
    tried: dict[str, int] = field(default_factory=dict)
    lifted: dict[str, int] = field(default_factory=dict)
    best_lift: dict[str, float] = field(default_factory=dict)

    @property
    def success_share(self) -> float:
        """Share of the sampled objects with at least one validated proposal (0 when there are none)."""
        if not self.tried:
            return 0.0
        return sum(bool(self.proposals.get(name)) for name in self.tried) / len(self.tried)


# ---------------------------------------------------------------------------------------------- candidate planning
@dataclass(frozen=True)
class ObjectFrame:
    """An object's horizontal principal axes and extents (object frame).

    :param axis_angle: angle of the long horizontal axis from the object's x axis.
    :param centre: (2,) centre of the object's extent along the two axes, object frame.
    :param half_length: half the object's width along the long axis.
    :param half_width: half its width along the narrow axis.
    :param height: its height.
    :param top: height of its top above its origin.
    :param directions: (M,) horizontal directions (angles from the object's x axis) spread over the full circle.
    :param support: (M,) the object's extent from its origin in each of them.
    """

    axis_angle: float
    centre: np.ndarray
    half_length: float
    half_width: float
    height: float
    top: float
    directions: np.ndarray
    support: np.ndarray

    @property
    def axis(self) -> np.ndarray:
        """(2,) unit vector along the long axis."""
        return np.array([np.cos(self.axis_angle), np.sin(self.axis_angle)])

    @property
    def elongation(self) -> float:
        """Length over width."""
        return self.half_length / max(self.half_width, 1e-9)


def object_frame(obj: ObjectSpec, directions: int = 36) -> ObjectFrame:
    """Principal horizontal axes of ``obj``: the narrow axis is the horizontal direction of least width (so a
    box's long axis is its long side, not its diagonal), the long axis is perpendicular to it."""
    angles = np.linspace(0.0, np.pi, 2 * (directions // 2), endpoint=False)  # even: every angle has its normal
    units = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    # once per object, not per step: the support function is defined per direction
    plus = np.array([object_support(obj, u) for u in units])
    minus = np.array([object_support(obj, -u) for u in units])
    narrow = int(np.argmin(plus + minus))
    long = (narrow + len(angles) // 2) % len(angles)
    middle = 0.5 * (plus - minus)
    centre = middle[long] * units[long, :2] + middle[narrow] * units[narrow, :2]
    low, high = object_bounds(obj)
    return ObjectFrame(
        axis_angle=float(angles[long]), centre=centre, half_length=0.5 * float(plus[long] + minus[long]),
        half_width=0.5 * float(plus[narrow] + minus[narrow]), height=float(high[2] - low[2]), top=float(high[2]),
        directions=np.concatenate([angles, angles + np.pi]), support=np.concatenate([plus, minus]),
    )  # fmt: skip


def _object_rng(obj: ObjectSpec, seed: int) -> np.random.Generator:
    """A generator that depends only on the seed and the object's name (not on its place in the list)."""
    return np.random.default_rng([seed, zlib.crc32(obj.name.encode())])


def _balanced(levels: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` level indices in random order, each of ``levels`` levels used as evenly as possible."""
    return rng.permutation(np.resize(rng.permutation(levels), count))


def _aim_points(frame: ObjectFrame, config: SamplerConfig, count: int, rng: np.random.Generator) -> np.ndarray:
    """(count, 2) aim points in the object frame: on the rim of a wide object, along the axis of an elongated one,
    else the middle."""
    if frame.half_width >= config.wide_half_width:
        pick = _balanced(len(frame.directions), count, rng)  # rim directions spread around the object
        angle = frame.directions[pick]
        return config.rim_fraction * frame.support[pick, None] * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    fractions = np.asarray(config.axis_offsets if frame.elongation >= config.elongation_ratio else (0.0,))
    along = fractions[_balanced(len(fractions), count, rng)] * frame.half_length
    return frame.centre + along[:, None] * frame.axis


def plan_candidates(obj: ObjectSpec, config: SamplerConfig, object_index: int = 0) -> CandidateSet:
    """``config.candidates_per_object`` candidates for ``obj``, deterministic in (seed, object name).

    Yaw is stratified over ``yaw_range``; aim point, depth and closure are each spread evenly over their levels
    and combined at random, so even a few candidates cover every closure and every depth.
    """
    count = config.candidates_per_object
    rng = _object_rng(obj, config.seed)
    frame = object_frame(obj)
    yaw = frame.axis_angle + config.yaw_range * (rng.permutation(count) + rng.uniform(size=count)) / count
    aim = _aim_points(frame, config, count, rng)
    depths = np.minimum(np.asarray(config.approach_depths), config.max_depth_fraction * frame.height)
    depth = depths[_balanced(len(depths), count, rng)]
    closure_ids = np.array([CLOSURES.index(name) for name in config.closures])
    closure = closure_ids[_balanced(len(closure_ids), count, rng)]
    jitter = rng.uniform(-config.grasp_centre_jitter, config.grasp_centre_jitter, size=(count, 2))
    hand_shift = -(np.asarray(config.grasp_centre) + jitter)
    seed = rng.integers(0, 2**31 - 1, size=count)
    return CandidateSet(
        object_index=np.full(count, object_index), yaw=np.mod(yaw, 2.0 * np.pi), aim=aim, hand_shift=hand_shift,
        top=np.full(count, frame.top), depth=depth, closure=closure, seed=seed,
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- simulation
def closure_targets(task: GraspTask, name: str) -> np.ndarray:
    """(18,) finger joint targets of closure ``name`` (one of ``CLOSURES``)."""
    if name == "power":
        return closed_finger_targets(task)
    lay = task.layout
    targets = np.clip(0.0, lay.finger_low, lay.finger_high)
    index = {joint: i for i, joint in enumerate(FINGER_ACTUATORS)}
    for joint, value in CLOSURE_TARGETS[name].items():
        targets[index[joint]] = value
    return np.clip(targets, lay.finger_low, lay.finger_high)


@dataclass
class _Plan:
    """Per-env quantities of a run that stay fixed once the envs are placed."""

    aim: np.ndarray  # (N, 3) aim point in the object frame (z 0: the height comes from hover_z / grasp_z)
    shift: np.ndarray  # (N, 3) hand point minus aim point, world frame
    hover_z: np.ndarray  # (N,) world height of the hand point in the first half of the approach
    grasp_z: np.ndarray  # (N,) ... and in the second half
    closed: np.ndarray  # (N, 18) closed finger targets
    cos: np.ndarray  # (N,) start-yaw frame of the actions
    sin: np.ndarray
    start_z: np.ndarray  # (N,) object height after placing


def _place(task: GraspTask, candidates: CandidateSet, config: SamplerConfig) -> _Plan:
    """Reset every env, turn its object so that the hand's yaw relative to it is the candidate's, and plan.

    The task draws one yaw for object and hand alike; rotating the object alone by (hand yaw - candidate yaw)
    sets the relative yaw without touching the task's state (the hand keeps its start-yaw frame).
    """
    task.seed(candidates.seed.tolist())
    task.reset()
    lay, sim = task.layout, task.sim
    ids = np.arange(task.num_envs)
    hand_yaw = sim.qpos[:, lay.root_qpos[3]].copy()
    qpos = sim.qpos.copy()
    qpos[:, lay.object_qpos + 3 : lay.object_qpos + 7] = quat.from_yaw(hand_yaw - candidates.yaw)
    sim.reset(ids, qpos)
    cos, sin = np.cos(hand_yaw), np.sin(hand_yaw)
    shift = quat.rotate_yaw(np.pad(candidates.hand_shift, ((0, 0), (0, 1))), cos, sin)
    start_z = sim.sensordata[:, lay.sensor["object_pos"]][:, 2].copy()
    top = start_z + candidates.top
    table = np.stack([closure_targets(task, name) for name in CLOSURES])
    action_cos, action_sin = np.cos(task.hand_yaw), np.sin(task.hand_yaw)
    return _Plan(
        aim=np.pad(candidates.aim, ((0, 0), (0, 1))), shift=shift, hover_z=top + config.hover_clearance,
        grasp_z=top - candidates.depth, closed=table[candidates.closure], cos=action_cos, sin=action_sin,
        start_z=start_z,
    )  # fmt: skip


def _actions(task: GraspTask, plan: _Plan, step: int, config: SamplerConfig) -> np.ndarray:
    """The 24-d actions of every env at ``step``: servo the hand point to its target while approaching, keep the
    root still while the fingers close and during the hold, push it up while lifting."""
    sensors, lay = task.sim.sensordata, task.layout
    actions = np.zeros((task.num_envs, ACTION_DIM))
    if step < config.approach_steps:
        object_pos = sensors[:, lay.sensor["object_pos"]]
        # the aim follows the object, in case the hand nudges it on the way down
        target = object_pos + quat.rotate(sensors[:, lay.sensor["object_quat"]], plan.aim) + plan.shift
        target[:, 2] = plan.hover_z if step < config.approach_steps // 2 else plan.grasp_z
        error = target - sensors[:, lay.sensor["hand_point"]]
        world = np.clip(config.position_gain * error, -config.max_approach_action, config.max_approach_action)
        actions[:, 0:3] = quat.rotate_yaw(world, plan.cos, -plan.sin)  # policy frame = start-yaw frame
    elif config.approach_steps + config.close_steps <= step < config.total_steps - config.hold_steps:
        actions[:, 2] = config.lift_action
    closing = np.clip((step - config.approach_steps + 1) / config.close_steps, 0.0, 1.0)
    open_targets = np.clip(0.0, lay.finger_low, lay.finger_high)
    actions[:, 6:] = finger_actions(task, open_targets + closing * (plan.closed - open_targets))
    return actions


def _record(task: GraspTask) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hand point, palm quat (object frame), clipped joint angles, and the object's position in the palm frame."""
    sensors, lay = task.sim.sensordata, task.layout
    object_pos, hand_point = sensors[:, lay.sensor["object_pos"]], sensors[:, lay.sensor["hand_point"]]
    palm = sensors[:, lay.sensor["palm_quat"]]
    object_inv = quat.conjugate(sensors[:, lay.sensor["object_quat"]])
    point = quat.rotate(object_inv, hand_point - object_pos)
    palm_in_object = quat.multiply(object_inv, palm)
    palm_in_object /= np.linalg.norm(palm_in_object, axis=1, keepdims=True)
    palm_in_object *= np.where(palm_in_object[:, :1] < 0.0, -1.0, 1.0)  # one sign per rotation
    # joint limits are soft in MuJoCo: a squeezing finger can sit a hair past one; a proposal is a target pose
    qpos = np.clip(sensors[:, lay.sensor["hand_qpos"]], lay.hand_joint_low, lay.hand_joint_high)
    object_in_palm = quat.rotate(quat.conjugate(palm), object_pos - hand_point)
    return point, palm_in_object, qpos, object_in_palm


def run_candidates(
    task: GraspTask,
    candidates: CandidateSet,
    config: SamplerConfig,
    on_step: Callable[[GraspTask, int], None] | None = None,
) -> GraspOutcome:
    """Run one candidate per env of ``task`` (built with ``autoreset=False``) and judge it. The task's envs are
    reseeded with the candidates' seeds and reset first.

    :param task: the envs; env i runs candidate i on its own object.
    :param candidates: ``task.num_envs`` candidates.
    :param config: phases, actions and the validation rule.
    :param on_step: called as ``on_step(task, step)`` after every step (probes, frames, replay checks).
    """
    if task.autoreset:
        raise ValueError("run_candidates needs a GraspTask built with autoreset=False")
    if len(candidates) != task.num_envs:
        raise ValueError(f"{len(candidates)} candidates for {task.num_envs} envs")
    plan = _place(task, candidates, config)
    failed = np.zeros(task.num_envs, dtype=bool)
    recorded = None
    for step in range(config.total_steps):
        failed |= task.step(_actions(task, plan, step, config)).physics_reset
        if step == config.closed_step:
            recorded = _record(task)
        if on_step is not None:
            on_step(task, step)
    assert recorded is not None  # closed_step < total_steps
    point, palm, qpos, held_at = recorded
    sensors, lay = task.sim.sensordata, task.layout
    object_pos = sensors[:, lay.sensor["object_pos"]]
    lift = np.where(failed, np.nan, object_pos[:, 2] - plan.start_z)
    in_hand = np.linalg.norm(object_pos - sensors[:, lay.sensor["hand_point"]], axis=1) <= config.hold_distance
    slip = np.linalg.norm(_record(task)[3] - held_at, axis=1)
    valid = ~failed & (np.nan_to_num(lift, nan=-np.inf) >= config.lift_threshold) & in_hand
    valid &= np.isfinite(point).all(axis=1) & np.isfinite(palm).all(axis=1) & np.isfinite(qpos).all(axis=1)
    return GraspOutcome(lift=lift, valid=valid, slip=slip, hand_point=point, palm_quat=palm, hand_qpos=qpos)


# ---------------------------------------------------------------------------------------------- the sampler
def sample_proposals(
    objects: Sequence[ObjectSpec],
    config: SamplerConfig | None = None,
    scene_config: SceneConfig | None = None,
    max_envs: int = 512,
    progress: Callable[[int, int], None] | None = None,
) -> SamplingReport:
    """Validated grasp proposals for ``objects``.

    :param objects: the objects, with unique names; objects of different shapes share batches.
    :param config: candidate grid, phases and validation rule (defaults when None).
    :param scene_config: the scene to simulate in (the training scene by default).
    :param max_envs: envs per batched simulation; candidates run in chunks of at most this many.
    :param progress: called as ``progress(done, total)`` candidates after every chunk.
    """
    config = config or SamplerConfig()
    objects = list(objects)
    names = [o.name for o in objects]
    if len(set(names)) != len(names):
        raise ValueError("object names must be unique: proposals are keyed by name")
    if max_envs < 1:
        raise ValueError("max_envs must be at least 1")
    report = SamplingReport()
    if not objects:
        return report
    candidates = CandidateSet.concatenate([plan_candidates(o, config, i) for i, o in enumerate(objects)])
    outcome = _run_chunks(objects, candidates, config, Scene(scene_config), max_envs, progress)
    for i, obj in enumerate(objects):
        rows = np.flatnonzero(candidates.object_index == i)
        _report_object(report, obj.name, candidates.take(rows), _take_outcome(outcome, rows))
    return report


def _run_chunks(
    objects: Sequence[ObjectSpec],
    candidates: CandidateSet,
    config: SamplerConfig,
    scene: Scene,
    max_envs: int,
    progress: Callable[[int, int], None] | None,
) -> GraspOutcome:
    """Every candidate, ``max_envs`` at a time, one batched task per chunk on the shared scene."""
    task_config = TaskConfig(episode_length=config.total_steps)
    outcomes = []
    for start in range(0, len(candidates), max_envs):
        chunk = candidates.take(slice(start, start + max_envs))
        task = GraspTask(
            [objects[i] for i in chunk.object_index], task_config, scene=scene, num_threads=config.num_threads,
            autoreset=False,
        )  # fmt: skip
        outcomes.append(run_candidates(task, chunk, config))
        if progress is not None:
            progress(start + len(chunk), len(candidates))
    return GraspOutcome(**{name: np.concatenate([vars(o)[name] for o in outcomes]) for name in vars(outcomes[0])})


def _take_outcome(outcome: GraspOutcome, rows: np.ndarray) -> GraspOutcome:
    return GraspOutcome(**{name: value[rows] for name, value in vars(outcome).items()})


def _report_object(report: SamplingReport, name: str, candidates: CandidateSet, outcome: GraspOutcome) -> None:
    """File one object's validated proposals, best first: least slip in the hand, then the highest lift."""
    valid = np.flatnonzero(outcome.valid)
    order = valid[np.lexsort((-outcome.lift[valid], outcome.slip[valid]))]
    report.proposals[name] = [outcome.proposal(int(row)) for row in order]
    report.candidates[name] = candidates.take(order)
    report.tried[name] = len(candidates)
    report.lifted[name] = len(valid)
    finite = outcome.lift[np.isfinite(outcome.lift)]
    report.best_lift[name] = float(finite.max()) if len(finite) else 0.0  # stays a JSON-safe number
