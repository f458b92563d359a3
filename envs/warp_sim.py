"""The batched physics on MuJoCo Warp: ``BatchedSim``'s interface, N worlds on a CUDA device or warp's CPU device.

It runs on ``mujoco_warp`` directly, not MJX: MJX cannot give each world its own ``geom_dataid``, so it cannot put a
different mesh in every world. All worlds share one *base model* that holds every object's geoms and meshes; each
world then gets its own object through per-world model arrays (shape ``(nworld, ...)``):

- geoms: ``geom_dataid`` (which mesh a hull slot uses; -1 removes a mesh from a world), ``geom_size``,
  ``geom_aabb``, ``geom_rbound``, ``geom_pos``, ``geom_quat``;
- bodies: ``body_mass``, ``body_subtreemass``, ``body_inertia``, ``body_invweight0``, ``body_ipos``,
  ``body_iquat``, and ``dof_invweight0`` (constraint regularisation depends on the object's mass).

Every per-world value is copied from the object's C MuJoCo model (``Scene.object_model``), so a world runs the same
numbers as ``BatchedSim``'s simulation of that object. MuJoCo Warp cannot vary a geom's type per world, so a primitive
slot used with several types in one batch gets one geom per type; the ones a world does not use are shrunk and
parked far from everything (``PARK_DISTANCE``). Slots that no object of the batch uses never collide
(contype = conaffinity = 0).

On the CPU device the arrays the task reads and writes (``qpos``, ``qvel``, ``ctrl``, ``qacc_warmstart``,
``sensordata``, ``xaxis``) are numpy views of the warp arrays (no copies). On CUDA they are pinned host mirrors,
pushed before and pulled after every step, and the substeps run as one captured CUDA graph.

**Resets.** MuJoCo Warp's forward runs every world, and with desynchronised episodes a few worlds reset on almost
every step: a whole-batch forward per step would cost about a third of the physics. So a reset clears the worlds'
device data (``reset_data`` with a world mask), writes their new state, and takes their sensors and joint axes
from C MuJoCo's forward of the same worlds (a ``BatchedSim`` shadow of the batch, used only here): what
``BatchedSim.reset`` computes. The device recomputes everything else from the state at the start of the next step.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mujoco
import numpy as np

from envs.objects.spec import ObjectSpec
from envs.scene import Scene, _compile_with_explicit_inertia, fixed_size_hull
from envs.sim import BatchedSim

#: warp's compiled kernels (git-ignored) unless WARP_CACHE_PATH names another folder: the first CPU step compiles
#: for about a minute, later processes load the kernels in about a second.
KERNEL_CACHE_DIR = Path(__file__).resolve().parent.parent / ".warp_cache"
#: Contacts and constraint rows allocated per world. C MuJoCo peaks at 16 contacts and 87 rows over the scripted
#: grasp of the five primitives (47 rows with random actions); a world that overflows counts as blown up.
NCONMAX_PER_WORLD = 64
NJMAX_PER_WORLD = 256
#: A primitive geom that a world's object does not use sits this far (m) from its body, shrunk to PARK_SIZE (m).
PARK_DISTANCE = 100.0
PARK_SIZE = 1e-4
#: Size of the base model's object geoms: valid for every geom type; every world overrides it.
TEMPLATE_SIZE = (0.01, 0.01, 0.01)
#: MuJoCo's mjMAXVAL: a |qpos| or |qvel| entry above it is a blow-up, as in mj_checkPos / mj_checkVel.
MAX_STATE_VALUE = 1e10
#: Per-world model fields, by the object dimension they index.
GEOM_FIELDS = ("geom_dataid", "geom_size", "geom_aabb", "geom_rbound", "geom_pos", "geom_quat")
BODY_FIELDS = ("body_mass", "body_subtreemass", "body_inertia", "body_invweight0", "body_ipos", "body_iquat")
DOF_FIELDS = ("dof_invweight0",)
#: Arrays the task uses; the first four are written by the task (pushed to a CUDA device before each step).
HOST_FIELDS = ("ctrl", "qpos", "qvel", "qacc_warmstart", "sensordata", "xaxis")
PUSHED_FIELDS = HOST_FIELDS[:4]


def _import_warp() -> tuple[Any, Any]:
    """warp and mujoco_warp, with the kernel cache in the repository (set before warp initialises)."""
    import warp as wp

    if wp.config.kernel_cache_dir is None and "WARP_CACHE_PATH" not in os.environ:
        wp.config.kernel_cache_dir = str(KERNEL_CACHE_DIR)
    wp.config.log_level = wp.LOG_WARNING  # no banner, no line per compiled module
    import mujoco_warp as mjw

    wp.init()
    return wp, mjw


def default_device() -> str:
    """CUDA when a CUDA device is present, else warp's CPU device."""
    wp, _ = _import_warp()
    return "cuda:0" if wp.get_cuda_device_count() > 0 else "cpu"


class WarpSim:
    """N simulations of the scene, one object each, on MuJoCo Warp (same interface as ``BatchedSim``).

    :param scene: the compiled scene and its object model factory.
    :param objects: the object of every simulation (len = number of worlds).
    :param device: warp device (``cpu``, ``cuda``, ``cuda:1`` ...); None picks CUDA when present, else the CPU.
    :param nconmax: contacts allocated per world.
    :param njmax: constraint rows allocated per world.
    """

    def __init__(
        self,
        scene: Scene,
        objects: Sequence[ObjectSpec],
        device: str | None = None,
        nconmax: int = NCONMAX_PER_WORLD,
        njmax: int = NJMAX_PER_WORLD,
    ) -> None:
        if not objects:
            raise ValueError("WarpSim needs at least one object")
        wp, mjw = _import_warp()
        self._wp, self._mjw = wp, mjw
        try:
            self.device = wp.get_device(device or default_device())
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"option device {device!r} is not a warp device here ({err})") from err
        self.scene = scene
        self.num_envs = n = len(objects)
        # C MuJoCo's simulation of the same worlds, for resets (see the module's *Resets*); its models, one per
        # world, are the source of every per-world value and what model_of / data_of render with
        self._reset_shadow = BatchedSim(scene, objects, num_threads=1)
        self.models = self._reset_shadow.models
        base, per_object, world_object = _base_model_and_tables(scene, objects)
        self.base_model = base
        with wp.ScopedDevice(self.device):
            self.mjw_model = mjw.put_model(base, batch_sizes={f: n for f in per_object})
            for field, table in per_object.items():
                target = getattr(self.mjw_model, field)
                values = np.ascontiguousarray(table[world_object]).reshape(target.numpy().shape)
                target.assign(values.astype(target.numpy().dtype))
            data = mujoco.MjData(base)
            mujoco.mj_forward(base, data)
            self.mjw_data = mjw.put_data(base, data, nworld=n, nconmax=nconmax, njmax=njmax)
        self._on_cpu = self.device.is_cpu
        self._mirrors: dict[str, tuple[Any, Any]] = {}  # CUDA only: name -> (device array, pinned host array)
        self.ctrl, self.qpos, self.qvel, self.qacc_warmstart, self.sensordata, self.xaxis = (
            self._host_view(name) for name in HOST_FIELDS
        )
        self._overflow = self._host_view("overflow")
        self.pull()
        self._overflow_seen = self._overflow.copy()
        self._blowup_overflow = int(mjw.OverflowType.NEFC | mjw.OverflowType.BROADPHASE | mjw.OverflowType.NARROWPHASE)
        self._graph: Any = None
        self._graph_substeps = 0

    # ------------------------------------------------------------------ host <-> device
    def _host_view(self, name: str) -> np.ndarray:
        """A numpy array for data field ``name``: the warp array's own memory on the CPU device, else a mirror."""
        array = getattr(self.mjw_data, name)
        if self._on_cpu:
            return array.numpy()  # shares memory on the CPU device
        host = self._wp.empty(array.shape, dtype=array.dtype, device="cpu", pinned=True)
        self._mirrors[name] = (array, host)
        return host.numpy()

    def push(self) -> None:
        """Copy the host arrays the task writes to the device (nothing to do on the CPU device: they are views)."""
        for name in PUSHED_FIELDS:
            if name in self._mirrors:
                device, host = self._mirrors[name]
                self._wp.copy(device, host)

    def pull(self) -> None:
        """Copy the device state to the host arrays (nothing to do on the CPU device) and wait for the device."""
        for device, host in self._mirrors.values():
            self._wp.copy(host, device)
        self._wp.synchronize_device(self.device)

    # ------------------------------------------------------------------ BatchedSim interface
    def step(self, substeps: int) -> np.ndarray:
        """Advance every world; return a bool mask of those that blew up (non-finite or huge state, or a contact /
        constraint buffer overflow, after which that world's physics is wrong)."""
        self.push()
        self.step_physics(substeps)
        self.pull()
        failed = ~(np.isfinite(self.qpos).all(axis=1) & np.isfinite(self.qvel).all(axis=1))
        with np.errstate(invalid="ignore"):
            failed |= (np.abs(self.qpos) > MAX_STATE_VALUE).any(axis=1) | (np.abs(self.qvel) > MAX_STATE_VALUE).any(axis=1)
        overflow = self._overflow & self._blowup_overflow
        failed |= overflow != (self._overflow_seen & self._blowup_overflow)
        self._overflow_seen = self._overflow.copy()
        return failed

    def step_physics(self, substeps: int) -> None:
        """Raw device step of every world (no host copies, no checks): what the throughput benchmark times."""
        wp, mjw = self._wp, self._mjw
        with wp.ScopedDevice(self.device):
            if self._on_cpu:
                for _ in range(substeps):
                    mjw.step(self.mjw_model, self.mjw_data)
                return
            if self._graph is None or self._graph_substeps != substeps:
                with wp.ScopedCapture() as capture:  # one graph launch instead of hundreds of kernel launches
                    for _ in range(substeps):
                        mjw.step(self.mjw_model, self.mjw_data)
                self._graph, self._graph_substeps = capture.graph, substeps
            wp.capture_launch(self._graph)

    def reset(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray | None = None) -> None:
        """Put worlds ``ids`` in the given state (controls and warmstart zero) and compute their sensors (see the
        module's *Resets*); the other worlds are not touched."""
        ids = np.asarray(ids)
        if len(ids) == 0:
            return
        wp, mjw = self._wp, self._mjw
        mask = np.zeros(self.num_envs, dtype=bool)
        mask[ids] = True
        with wp.ScopedDevice(self.device):  # every other field of these worlds to its default, on the device
            mjw.reset_data(self.mjw_model, self.mjw_data, wp.array(mask, dtype=bool))
        self.qpos[ids] = qpos
        self.qvel[ids] = 0.0 if qvel is None else qvel
        self.ctrl[ids] = 0.0
        self.qacc_warmstart[ids] = 0.0
        self.push()  # the host mirrors hold the other worlds' current state: pushing them changes nothing there
        shadow = self._reset_shadow
        shadow.reset(ids, self.qpos[ids], self.qvel[ids])  # the state as the device holds it (float32)
        self.sensordata[ids] = shadow.sensordata[ids]
        self.xaxis[ids] = shadow.xaxis[ids]
        self._overflow_seen[ids] = self._overflow[ids]

    def model_of(self, env: int) -> mujoco.MjModel:
        """The C MuJoCo model of world ``env``'s object (for rendering and diagnostics)."""
        return self.models[env]

    def data_of(self, env: int) -> mujoco.MjData:
        """World ``env``'s state in an MjData of its C model, every derived field computed by C MuJoCo."""
        model = self.model_of(env)
        data = mujoco.MjData(model)
        data.qpos[:] = self.qpos[env]
        data.qvel[:] = self.qvel[env]
        data.ctrl[:] = self.ctrl[env]
        data.qacc_warmstart[:] = self.qacc_warmstart[env]
        mujoco.mj_forward(model, data)
        return data


def _slot_parts(obj: ObjectSpec) -> list[tuple[str, str]]:
    """(slot geom name, kind) of each part, assigned to slots as ``Scene._compile_object`` assigns them."""
    prim, hull, out = 0, 0, []
    for part in obj.parts:
        if part.kind == "hull":
            out.append((f"object_hull{hull}", "hull"))
            hull += 1
        else:
            out.append((f"object_prim{prim}", part.kind))
            prim += 1
    return out


def _base_model_and_tables(
    scene: Scene, objects: Sequence[ObjectSpec]
) -> tuple[mujoco.MjModel, dict[str, np.ndarray], np.ndarray]:
    """The base model, each per-world field's table over the distinct objects (U, ...), and each world's row."""
    cfg = scene.config
    names = list(dict.fromkeys(o.name for o in objects))
    unique = [next(o for o in objects if o.name == name) for name in names]
    world_object = np.array([names.index(o.name) for o in objects])
    spec = scene.spec.copy()
    body = spec.body("object")
    # base geom name -> (slot geom name, kind); every (slot, kind) any object uses gets one geom
    geom_role: dict[str, tuple[str, str]] = {}
    mesh_of: dict[tuple[int, str], str] = {}  # (object row, slot geom) -> its mesh in the base model
    for slot in range(cfg.primitive_slots):
        slot_name = f"object_prim{slot}"
        kinds = list(dict.fromkeys(k for o in unique for s, k in _slot_parts(o) if s == slot_name))
        template = spec.geom(slot_name)
        if not kinds:
            template.contype, template.conaffinity = 0, 0  # no object of this batch uses the slot
            continue
        template.type, template.size = _geom_type(kinds[0]), list(TEMPLATE_SIZE)
        geom_role[slot_name] = (slot_name, kinds[0])
        for kind in kinds[1:]:
            name = f"{slot_name}_{kind}"
            body.add_geom(name=name, type=_geom_type(kind), size=list(TEMPLATE_SIZE), rgba=list(template.rgba),
                          condim=template.condim, friction=list(template.friction), solimp=list(template.solimp),
                          priority=template.priority)  # fmt: skip
            geom_role[name] = (slot_name, kind)
    for slot in range(cfg.hull_slots):
        slot_name = f"object_hull{slot}"
        template = spec.geom(slot_name)
        for row, obj in enumerate(unique):
            hulls = [p for p in obj.parts if p.kind == "hull"]
            if slot < len(hulls):
                mesh = f"warp_hull_{row}_{slot}"
                spec.add_mesh(name=mesh, uservert=fixed_size_hull(hulls[slot].vertices, cfg.hull_vertices).ravel().tolist())
                mesh_of[(row, slot_name)] = mesh
        used = [mesh_of[(r, slot_name)] for r in range(len(unique)) if (r, slot_name) in mesh_of]
        if used:
            template.meshname = used[0]
            geom_role[slot_name] = (slot_name, "hull")
        else:
            template.contype, template.conaffinity = 0, 0
    # a full, non-diagonal inertial like every object model's, so no code path treats the object body as simple
    base = _compile_with_explicit_inertia(spec)
    models = [scene.object_model(o) for o in unique]
    tables = {f: np.stack([getattr(base, f)] * len(unique)).copy() for f in GEOM_FIELDS + BODY_FIELDS + DOF_FIELDS}
    for row, (obj, model) in enumerate(zip(unique, models)):
        for f in BODY_FIELDS + DOF_FIELDS:
            tables[f][row] = getattr(model, f)
        uses = set(_slot_parts(obj))
        for name, (slot_name, kind) in geom_role.items():
            g = base.geom(name).id
            c = model.geom(slot_name).id
            if (slot_name, kind) not in uses:
                _park(tables, row, g)
                if kind == "hull":
                    tables["geom_dataid"][row, g] = -1  # the mesh is absent from this object's worlds
                continue
            for f in ("geom_size", "geom_aabb", "geom_rbound", "geom_pos", "geom_quat"):
                tables[f][row, g] = getattr(model, f)[c]
            if kind == "hull":
                mesh = base.mesh(mesh_of[(row, slot_name)]).id
                _check_same_mesh(base, mesh, model, int(model.geom_dataid[c]), obj.name)
                tables["geom_dataid"][row, g] = mesh
    return base, tables, world_object


def _geom_type(kind: str) -> mujoco.mjtGeom:
    return getattr(mujoco.mjtGeom, f"mjGEOM_{kind.upper()}")


def _park(tables: dict[str, np.ndarray], row: int, geom: int) -> None:
    tables["geom_size"][row, geom] = PARK_SIZE
    tables["geom_aabb"][row, geom] = [0.0, 0.0, 0.0, PARK_SIZE, PARK_SIZE, PARK_SIZE]
    tables["geom_rbound"][row, geom] = PARK_SIZE
    tables["geom_pos"][row, geom] = [0.0, 0.0, -PARK_DISTANCE]
    tables["geom_quat"][row, geom] = [1.0, 0.0, 0.0, 0.0]


def _check_same_mesh(base: mujoco.MjModel, mesh: int, model: mujoco.MjModel, source: int, name: str) -> None:
    """The base model's copy of a hull must be the mesh the object's own model compiled (same vertices, same frame)."""

    def vertices(m: mujoco.MjModel, i: int) -> np.ndarray:
        return m.mesh_vert[m.mesh_vertadr[i] : m.mesh_vertadr[i] + m.mesh_vertnum[i]]

    a, b = vertices(base, mesh), vertices(model, source)
    if a.shape != b.shape or not np.allclose(a, b, atol=1e-9):
        raise RuntimeError(f"object {name!r}: the warp base model compiled a hull differently from its own model")
