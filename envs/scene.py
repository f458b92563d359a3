"""The MuJoCo scene: OpenAI ShadowHand on a floating 6-DoF root above a table, one object with fixed slots.

Built once with ``mujoco.MjSpec`` from the vendored hand MJCF. Every object is compiled from the same spec into
a model whose ``MjData`` layout is identical (same geoms, same mesh sizes), so one ``mujoco.batch.Batch`` can run
a different object in every simulation through ``Batch.set_models``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from envs.config import SceneConfig
from envs.objects.spec import ObjectSpec, object_bounds

ASSET_DIR = Path(__file__).resolve().parent / "assets" / "shadow_hand"

#: Actuated finger joints in the reference's action order (MJCF actuator order of the OpenAI hand).
FINGER_ACTUATORS = (
    "FFJ3", "FFJ2", "FFJ1", "MFJ3", "MFJ2", "MFJ1", "RFJ3", "RFJ2", "RFJ1",
    "LFJ4", "LFJ3", "LFJ2", "LFJ1", "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
)  # fmt: skip
#: The 22 hand joints in the reference's DOF order.
HAND_JOINTS = (
    "FFJ3", "FFJ2", "FFJ1", "FFJ0", "MFJ3", "MFJ2", "MFJ1", "MFJ0", "RFJ3", "RFJ2", "RFJ1", "RFJ0",
    "LFJ4", "LFJ3", "LFJ2", "LFJ1", "LFJ0", "THJ4", "THJ3", "THJ2", "THJ1", "THJ0",
)  # fmt: skip
FINGERS = ("ff", "mf", "rf", "lf", "th")
#: Root joints: world-axis slides, then yaw-pitch-roll hinges (yaw first so the start yaw is one joint).
ROOT_JOINTS = ("root_x", "root_y", "root_z", "root_yaw", "root_pitch", "root_roll")
ROOT_AXES = ((1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0))

#: Hand frame -> world with the palm facing down and the fingers along +x: columns are the images of the hand
#: mount's x, y, z axes (the OpenAI hand's fingers extend along +z and its palm faces -y).
PALM_DOWN = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
#: The root pivot (hand rotation centre) in the hand-mount frame: near the palm centre.
PIVOT_IN_MOUNT = np.array([0.01, 0.0, 0.33])
#: Reference "hand point": palm origin + 0.08 along the palm's z - 0.02 along its y.
HAND_POINT_IN_PALM = (0.0, -0.02, 0.08)
TIP_POINT_IN_DISTAL = (0.0, 0.0, 0.02)
# contype bit of empty object slots: no geom has it in its conaffinity, so they stay in the BVH but never collide
EMPTY_SLOT_CONTYPE = 8


def _mat_to_quat(mat: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(mat, dtype=float).ravel())
    return quat


def _base_xml(cfg: SceneConfig) -> str:
    a = ASSET_DIR
    top = cfg.table_height
    joints = "\n".join(
        f'<joint name="{n}" type="{"slide" if i < 3 else "hinge"}" axis="{" ".join(map(str, ax))}" '
        f'limited="false" damping="0" armature="0"/>'
        for i, (n, ax) in enumerate(zip(ROOT_JOINTS, ROOT_AXES))
    )
    mount_quat = " ".join(f"{v:.9f}" for v in _mat_to_quat(PALM_DOWN))
    mount_pos = " ".join(f"{v:.9f}" for v in -PALM_DOWN @ PIVOT_IN_MOUNT)
    return f"""
<mujoco model="resdex_grasp">
  <compiler angle="radian" meshdir="{a}/stls" autolimits="true"/>
  <option timestep="{cfg.timestep!r}" iterations="{cfg.solver_iterations}" integrator="implicitfast" cone="elliptic"/>
  <include file="{a}/shared.xml"/>
  <asset><include file="{a}/shared_asset.xml"/></asset>
  <visual><global offwidth="1280" offheight="960"/></visual>
  <worldbody>
    <light name="top" directional="true" pos="0 0 3" dir="0 0 -1" diffuse="0.7 0.7 0.7"/>
    <camera name="front" pos="0.75 0 1.05" xyaxes="0 1 0 -0.45 0 0.89"/>
    <geom name="table" type="box" pos="0 0 {top - 0.02}" size="0.4 0.4 0.02" rgba="0.55 0.45 0.35 1"/>
    <site name="goal" pos="{' '.join(map(str, cfg.goal))}" size="0.005" rgba="1 0 0 1"/>
    <body name="hand_root" pos="{' '.join(map(str, cfg.hand_start))}" gravcomp="1">
      <inertial pos="0 0 0" mass="0.01" diaginertia="1e-5 1e-5 1e-5"/>
      {joints}
      <frame pos="{mount_pos}" quat="{mount_quat}">
        <include file="{a}/robot.xml"/>
      </frame>
    </body>
    <body name="object" pos="0 0 {top + 0.1}">
      <freejoint name="object_free"/>
    </body>
  </worldbody>
</mujoco>"""


def _strip_wrist_and_forearm(spec: mujoco.MjSpec) -> None:
    """ResDex's hand has no forearm collision and no wrist joints: the floating root moves the palm."""
    for tendon in list(spec.tendons):
        if tendon.name.startswith("robot0:T_WRJ"):
            spec.delete(tendon)
    for actuator in list(spec.actuators):
        if "WRJ" in actuator.name:
            spec.delete(actuator)
    for sensor in list(spec.sensors):  # replaced by the task's own sensors, in a fixed order
        spec.delete(sensor)
    for joint in ("robot0:WRJ1", "robot0:WRJ0"):
        spec.delete(spec.joint(joint))
    for geom in ("robot0:V_forearm", "robot0:C_forearm"):
        spec.delete(spec.geom(geom))
    mount = spec.body("robot0:hand mount")
    mount.pos, mount.quat = [0, 0, 0], [1, 0, 0, 0]
    mount.alt.type = mujoco.mjtOrientation.mjORIENTATION_QUAT  # drop the file's euler, the frame orients it


def _add_sensors(spec: mujoco.MjSpec) -> None:
    """Everything the task reads comes from sensordata, in this order (see SceneLayout.sensor)."""
    S, O = mujoco.mjtSensor, mujoco.mjtObj
    for j in HAND_JOINTS:
        spec.add_sensor(name=f"qpos_{j}", type=S.mjSENS_JOINTPOS, objtype=O.mjOBJ_JOINT, objname=f"robot0:{j}")
    for kind in (S.mjSENS_FRAMEPOS, S.mjSENS_FRAMEQUAT, S.mjSENS_FRAMELINVEL, S.mjSENS_FRAMEANGVEL):
        for f in FINGERS:
            spec.add_sensor(name=f"{kind.name}_{f}", type=kind, objtype=O.mjOBJ_XBODY, objname=f"robot0:{f}distal")
    for f in FINGERS:
        spec.add_sensor(name=f"tip_point_{f}", type=S.mjSENS_FRAMEPOS, objtype=O.mjOBJ_SITE, objname=f"tip_point_{f}")
    for f in FINGERS:
        spec.add_sensor(name=f"touch_{f}", type=S.mjSENS_TOUCH, objtype=O.mjOBJ_SITE, objname=f"robot0:Tch_{f}tip")
    spec.add_sensor(name="hand_point", type=S.mjSENS_FRAMEPOS, objtype=O.mjOBJ_SITE, objname="hand_point")
    spec.add_sensor(name="palm_quat", type=S.mjSENS_FRAMEQUAT, objtype=O.mjOBJ_XBODY, objname="robot0:palm")
    spec.add_sensor(name="object_pos", type=S.mjSENS_FRAMEPOS, objtype=O.mjOBJ_XBODY, objname="object")
    spec.add_sensor(name="object_quat", type=S.mjSENS_FRAMEQUAT, objtype=O.mjOBJ_XBODY, objname="object")
    spec.add_sensor(name="object_linvel", type=S.mjSENS_FRAMELINVEL, objtype=O.mjOBJ_XBODY, objname="object")
    spec.add_sensor(name="object_angvel", type=S.mjSENS_FRAMEANGVEL, objtype=O.mjOBJ_XBODY, objname="object")


#: (name, width) of each sensordata block, in _add_sensors order.
SENSOR_BLOCKS = (
    ("hand_qpos", 22), ("tip_pos", 15), ("tip_quat", 20), ("tip_linvel", 15), ("tip_angvel", 15),
    ("tip_point", 15), ("touch", 5), ("hand_point", 3), ("palm_quat", 4),
    ("object_pos", 3), ("object_quat", 4), ("object_linvel", 3), ("object_angvel", 3),
)  # fmt: skip


def _add_sites(spec: mujoco.MjSpec) -> None:
    spec.body("robot0:palm").add_site(name="hand_point", pos=list(HAND_POINT_IN_PALM), size=[0.004], group=3)
    for f in FINGERS:
        spec.body(f"robot0:{f}distal").add_site(name=f"tip_point_{f}", pos=list(TIP_POINT_IN_DISTAL), size=[0.003], group=3)


def _add_object_slots(spec: mujoco.MjSpec, cfg: SceneConfig) -> None:
    """Fixed geom slots on the object body: primitives first, then convex-hull meshes of fixed vertex count."""
    body = spec.body("object")
    for i in range(cfg.primitive_slots):
        body.add_geom(name=f"object_prim{i}", type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.001, 0, 0],
                      rgba=[0.85, 0.35, 0.25, 1], condim=4, friction=[1, 0.005, 0.0001],
                      solimp=list(cfg.object_solimp), priority=1)
    if cfg.hull_slots:
        _add_layout_pad_mesh(spec, cfg.hull_vertices)
    for i in range(cfg.hull_slots):
        spec.add_mesh(name=f"object_hull{i}", uservert=_placeholder_hull(cfg.hull_vertices).ravel().tolist())
        body.add_geom(name=f"object_hull{i}", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"object_hull{i}",
                      rgba=[0.85, 0.35, 0.25, 1], condim=4, friction=[1, 0.005, 0.0001],
                      solimp=list(cfg.object_solimp), priority=1)


def _add_layout_pad_mesh(spec: mujoco.MjSpec, hull_vertices: int) -> None:
    """A hidden cone whose apex degree and base polygon exceed any hull slot's, fixing the model-wide maxima.

    MuJoCo sizes collision scratch memory from the largest vertex degree and face polygon over all meshes. They
    depend on each hull's shape, so without this pad two hull objects rarely share one MjData layout.
    """
    n = 2 * hull_vertices
    angle = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    base = np.stack([np.cos(angle), np.sin(angle), np.zeros(n)], axis=1)
    vertices = 0.01 * np.concatenate([base, [[0.0, 0.0, 1.0]]])
    spec.add_mesh(name="layout_pad", uservert=vertices.ravel().tolist())
    spec.worldbody.add_geom(name="layout_pad", type=mujoco.mjtGeom.mjGEOM_MESH, meshname="layout_pad",
                            contype=0, conaffinity=0, group=5, pos=[0, 0, -1], rgba=[0, 0, 0, 0])


@functools.lru_cache(maxsize=8)
def _placeholder_hull(num_vertices: int) -> np.ndarray:
    """A 1 mm Fibonacci sphere: every point is a hull vertex, so every slot's mesh has the same size."""
    return 0.001 * fibonacci_sphere(num_vertices)


def fibonacci_sphere(n: int) -> np.ndarray:
    """n well-spread unit vectors (all on the convex hull)."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * i / n)
    azimuth = np.pi * (1 + 5**0.5) * i
    return np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], axis=1)


def _set_gravity_compensation(spec: mujoco.MjSpec) -> None:
    root = spec.body("hand_root")
    stack = [root]
    while stack:
        body = stack.pop()
        body.gravcomp = 1.0
        stack.extend(body.bodies)


def _add_root_actuators(spec: mujoco.MjSpec, cfg: SceneConfig, effective_mass: np.ndarray) -> None:
    """The reference drives the palm with a world wrench against 100/s linear and angular damping, which is a
    velocity servo: force = gain * action - (100 * mass) * velocity. We build exactly that as a `general`
    actuator per root joint. The rotational ones cap their torque per hinge; the linear force is capped on its
    norm by the task (``GraspTask._apply_actions``): a per-axis cap on the world-axis slides would make the
    physics depend on the start yaw."""
    for i, name in enumerate(ROOT_JOINTS):
        linear = i < 3
        gain = cfg.root_force_per_action if linear else cfg.root_torque_per_action
        damping = cfg.root_damping_per_mass * effective_mass[i]
        limits = (dict(ctrllimited=0, forcelimited=0) if linear else
                  dict(ctrlrange=[-2.0, 2.0], ctrllimited=1, forcerange=[-cfg.root_torque_limit, cfg.root_torque_limit],
                       forcelimited=1))  # fmt: skip
        spec.add_actuator(
            name=f"act_{name}", target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT,
            gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[gain] + [0] * 9,
            biastype=mujoco.mjtBias.mjBIAS_AFFINE, biasprm=[0, 0, -damping] + [0] * 7, **limits,
        )


@dataclass(frozen=True)
class SceneLayout:
    """Indices into the batched arrays, computed once from the compiled model."""

    nq: int
    nv: int
    nu: int
    root_qpos: np.ndarray  # (6,) qpos addresses of the root joints
    root_qvel: np.ndarray
    root_jnt: np.ndarray  # (6,) joint ids of the root joints
    hand_qpos: np.ndarray  # (22,) qpos addresses of the hand joints, reference order
    object_qpos: int  # first of 7 qpos of the object's free joint
    object_qvel: int
    finger_ctrl: np.ndarray  # (18,) actuator ids, reference action order
    root_ctrl: np.ndarray  # (6,)
    finger_low: np.ndarray  # (18,) ctrlrange of the finger actuators
    finger_high: np.ndarray
    hand_joint_low: np.ndarray  # (22,)
    hand_joint_high: np.ndarray
    sensor: dict[str, slice]
    hand_geoms: np.ndarray  # geom ids that belong to the hand (collision ones)
    object_geoms: np.ndarray
    object_body: int

    @classmethod
    def from_model(cls, m: mujoco.MjModel) -> SceneLayout:
        jid = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, n)  # noqa: E731
        aid = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_ACTUATOR, n)  # noqa: E731
        root_jnt = np.array([jid(n) for n in ROOT_JOINTS])
        hand_jnt = np.array([jid(f"robot0:{n}") for n in HAND_JOINTS])
        finger_ctrl = np.array([aid(f"robot0:A_{n}") for n in FINGER_ACTUATORS])
        obj_jnt = jid("object_free")
        offsets, sensor = 0, {}
        for name, width in SENSOR_BLOCKS:
            sensor[name] = slice(offsets, offsets + width)
            offsets += width
        if offsets != m.nsensordata:
            raise RuntimeError(f"sensor layout mismatch: {offsets} != {m.nsensordata}")
        object_body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "object")
        hand_root = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "hand_root")
        in_hand = np.array([_descends_from(m, m.geom_bodyid[g], hand_root) for g in range(m.ngeom)])
        collides = (m.geom_contype & 1 != 0) | (m.geom_conaffinity != 0)
        return cls(
            nq=m.nq, nv=m.nv, nu=m.nu,
            root_qpos=m.jnt_qposadr[root_jnt].copy(), root_qvel=m.jnt_dofadr[root_jnt].copy(), root_jnt=root_jnt,
            hand_qpos=m.jnt_qposadr[hand_jnt].copy(),
            object_qpos=int(m.jnt_qposadr[obj_jnt]), object_qvel=int(m.jnt_dofadr[obj_jnt]),
            finger_ctrl=finger_ctrl, root_ctrl=np.array([aid(f"act_{n}") for n in ROOT_JOINTS]),
            finger_low=m.actuator_ctrlrange[finger_ctrl, 0].copy(), finger_high=m.actuator_ctrlrange[finger_ctrl, 1].copy(),
            hand_joint_low=m.jnt_range[hand_jnt, 0].copy(), hand_joint_high=m.jnt_range[hand_jnt, 1].copy(),
            sensor=sensor,
            hand_geoms=np.flatnonzero(in_hand & collides),
            object_geoms=np.flatnonzero(m.geom_bodyid == object_body),
            object_body=object_body,
        )  # fmt: skip


def _descends_from(m: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = m.body_parentid[body]
    return False


class Scene:
    """The compiled scene template and a per-object model factory.

    :param config: scene parameters (timing, table, root actuation, object slot layout).
    """

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self.spec = self._build_spec()
        self.model = self.spec.compile()
        self.layout = SceneLayout.from_model(self.model)
        self._object_models: dict[str, mujoco.MjModel] = {}

    def _build_spec(self) -> mujoco.MjSpec:
        cfg = self.config
        spec = mujoco.MjSpec.from_string(_base_xml(cfg))
        _strip_wrist_and_forearm(spec)
        _add_sites(spec)
        _add_sensors(spec)
        _set_gravity_compensation(spec)
        _add_object_slots(spec, cfg)
        effective_mass = _root_effective_mass(spec.compile())
        _add_root_actuators(spec, cfg, effective_mass)
        return spec

    def object_model(self, obj: ObjectSpec) -> mujoco.MjModel:
        """The scene with ``obj`` in the object slots, compiled once per object name and cached."""
        cached = self._object_models.get(obj.name)
        if cached is None:
            cached = self._compile_object(obj)
            self._object_models[obj.name] = cached
        return cached

    def _compile_object(self, obj: ObjectSpec) -> mujoco.MjModel:
        cfg = self.config
        if obj.num_primitives > cfg.primitive_slots or obj.num_hulls > cfg.hull_slots:
            raise ValueError(
                f"object {obj.name!r} has {obj.num_primitives} primitives and {obj.num_hulls} hulls; the scene has "
                f"{cfg.primitive_slots} primitive and {cfg.hull_slots} hull slots"
            )
        spec = self.spec.copy()
        prim = iter(range(cfg.primitive_slots))
        hull = iter(range(cfg.hull_slots))
        used: set[str] = set()
        for part in obj.parts:
            if part.kind == "hull":
                i = next(hull)
                geom = spec.geom(f"object_hull{i}")
                # a fresh mesh: editing the vertices of one the template already compiled leaves stale faces
                spec.delete(spec.mesh(f"object_hull{i}"))
                spec.add_mesh(name=f"object_hull{i}", uservert=fixed_size_hull(part.vertices, cfg.hull_vertices).ravel().tolist())
            else:
                i = next(prim)
                geom = spec.geom(f"object_prim{i}")
                geom.type = getattr(mujoco.mjtGeom, f"mjGEOM_{part.kind.upper()}")
                geom.size = list(part.size)
            geom.pos, geom.quat, geom.density = list(part.pos), list(part.quat), obj.density
            used.add(geom.name)
        for geom in spec.body("object").geoms:
            if geom.name not in used:  # an empty slot: massless, collision-free, invisible
                # A nonzero contype keeps the slot in the body's BVH (so every object has the same BVH size);
                # the bit matches no geom's conaffinity, so it never collides.
                geom.contype, geom.conaffinity = EMPTY_SLOT_CONTYPE, 0
                geom.density = 0.0
                geom.rgba = [0, 0, 0, 0]
                geom.group = 5
        # An explicit inertial keeps the body's inertia "non-simple" for every object, so all MjData layouts match.
        model = _compile_with_explicit_inertia(spec)
        return model

    def rest_height(self, obj: ObjectSpec) -> float:
        """Height of the object origin above the table top when it rests upright (its lowest point on the table)."""
        low, _ = object_bounds(obj)
        return float(-low[2])


def fixed_size_hull(vertices: np.ndarray, num_vertices: int, rounding: float = 5e-4) -> np.ndarray:
    """Exactly ``num_vertices`` points, all extreme, outlining the convex hull of ``vertices``.

    MuJoCo sizes a mesh's hull graph and BVH from its hull, so every hull slot needs the same number of hull
    vertices. Point i is the support point of the hull rounded by a ``rounding``-metre ball in the i-th of
    ``num_vertices`` fixed directions: the rounded hull is strictly convex, so every such point is a vertex.
    The shape grows by at most ``rounding``.
    """
    points = np.asarray(vertices, dtype=float)
    centre = points.mean(axis=0)
    directions = fibonacci_sphere(num_vertices)
    support = np.argmax((points - centre) @ directions.T, axis=0)
    return points[support] + rounding * directions


def _compile_with_explicit_inertia(spec: mujoco.MjSpec) -> mujoco.MjModel:
    model = spec.compile()
    body = model.body("object")
    obj = spec.body("object")
    obj.explicitinertial = True
    obj.mass = float(body.mass[0])
    obj.ipos = (body.ipos + 1e-5).tolist()  # 10 um: far below physical relevance, above the same-frame test
    obj.iquat = body.iquat.tolist()
    obj.inertia = body.inertia.tolist()
    return spec.compile()


def _root_effective_mass(model: mujoco.MjModel) -> np.ndarray:
    """Diagonal of the joint-space inertia for the 6 root joints at the initial pose (kg, kg m^2)."""
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, full)
    dofs = [model.jnt_dofadr[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n)] for n in ROOT_JOINTS]
    return np.array([full[d, d] for d in dofs])
