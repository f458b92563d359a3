"""The grasp task with the ``ResDexVision`` observation: student part (hand state + point cloud) | hyper observation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from envs import quaternions as quat
from envs.config import DEFAULT_BACKEND, SceneConfig, TaskConfig
from envs.depth_camera_rig import DepthCameraRig, resample_cloud
from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal
from envs.scene import Scene
from envs.surface_cloud import SurfaceCloudSampler
from envs.task import GraspTask
from envs.vision import HAND_OBS_END, NUM_POINTS, STUDENT_DIM, VisionConfig

#: Geom group of unused object slots (see ``envs.scene``); they carry no surface.
_EMPTY_SLOT_GROUP = 5


class VisionGraspTask(GraspTask):
    """``GraspTask`` whose observation is ``[proprio | cloud | hyper observation]`` (layout in ``envs.vision``).

    Dynamics, rewards, success and resets are the parent's; only ``_observe`` differs. The hyper observation is
    the parent's own (``obs_mode="hyper"``), so the privileged part is bit for bit what the hyper-policy saw.

    :param objects: the object of every env.
    :param task_config: task settings; ``obs_mode`` must be ``hyper``.
    :param vision_config: point-cloud settings.
    :param points: object name -> stored surface points (object frame) for ``gt_pose``; missing ones are sampled.
    :param scene: a built scene to share.
    :param scene_config: scene settings when ``scene`` is omitted.
    :param shape_codes: object name -> shape code (for the privileged part).
    :param proposals: object name -> grasp proposal.
    :param num_threads: physics threads (0: all CPUs).
    :param autoreset: reset finished envs inside ``step``.
    :param backend: physics engine (``mujoco`` or ``warp``; camera clouds need ``mujoco``).
    :param device: warp device for the ``warp`` backend.
    """

    def __init__(
        self,
        objects: Sequence[ObjectSpec],
        task_config: TaskConfig | None = None,
        vision_config: VisionConfig | None = None,
        points: Mapping[str, np.ndarray] | None = None,
        scene: Scene | None = None,
        scene_config: SceneConfig | None = None,
        shape_codes: Mapping[str, np.ndarray] | None = None,
        proposals: Mapping[str, GraspProposal] | None = None,
        num_threads: int = 0,
        autoreset: bool = True,
        backend: str = DEFAULT_BACKEND,
        device: str | None = None,
    ) -> None:
        task_config = task_config or TaskConfig(obs_mode="hyper")
        if task_config.obs_mode != "hyper":
            raise ValueError("the vision task's privileged part is the hyper observation; "
                             f"got obs_mode={task_config.obs_mode!r}")  # fmt: skip
        self.vision = vision_config or VisionConfig()
        self._cloud_rng = np.random.default_rng(0)  # deterministic by default, like the parent's reset draws
        if backend != "mujoco" and self.vision.cloud_mode == "camera":
            raise ValueError(f"option cloud_mode 'camera' needs backend 'mujoco' (its depth rays are cast on C MuJoCo's "
                             f"batch), not {backend!r}; use cloud_mode 'gt_pose'")  # fmt: skip
        super().__init__(objects, task_config, scene, scene_config, shape_codes, proposals, num_threads, autoreset,
                         backend, device)  # fmt: skip
        self.privileged_dim = self.obs_dim
        self.obs_dim = STUDENT_DIM + self.privileged_dim
        self._obs = np.zeros((self.num_envs, self.obs_dim), dtype=np.float32)
        self._surface: SurfaceCloudSampler | None = None
        self._rig: DepthCameraRig | None = None
        if self.vision.cloud_mode == "gt_pose":
            self._surface = SurfaceCloudSampler(self.objects, points, NUM_POINTS, self.vision.fps_variants)
        else:
            self._rig = DepthCameraRig.from_config(self.vision)
            self._target_geoms = np.zeros(self.scene.model.ngeom, dtype=bool)
            self._target_geoms[self.layout.object_geoms] = True
            self._object_radius = self._bounding_radii()
        # camera mode: the last cloud of each env, shown again while the object is out of sight
        self._held_cloud = np.zeros((self.num_envs, NUM_POINTS, 3))
        self.visible_points = np.zeros(self.num_envs, dtype=np.int64)

    def seed(self, seeds: Sequence[int | None]) -> None:
        super().seed(seeds)
        known = [int(s) for s in seeds if s is not None]
        # one generator for the whole batch (per-env generators would need a Python loop every step)
        self._cloud_rng = np.random.default_rng(known or None)

    def _reset_envs(self, ids: np.ndarray) -> None:
        super()._reset_envs(ids)
        self._held_cloud[ids] = 0.0  # no cloud of the previous episode carries over

    # ------------------------------------------------------------------ observations
    def _observe_after_reset(self, obs: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """The whole batch again: every env's cloud is drawn anew on each observation."""
        return self._observe()

    def _observe(self, ids: np.ndarray | None = None) -> np.ndarray:
        if ids is not None:
            raise NotImplementedError("the vision observation is drawn for the whole batch")
        hyper = super()._observe()
        n = self.num_envs
        cos, sin = np.cos(self.hand_yaw), np.sin(self.hand_yaw)
        goal = quat.rotate_yaw(np.broadcast_to(self.goal, (n, 3)), cos, -sin)
        cloud = quat.rotate_yaw(self._world_cloud(), cos, -sin)  # world -> start-yaw frame, as every other obs
        privileged = hyper if self.vision.privileged else np.zeros_like(hyper)
        parts = [hyper[:, :HAND_OBS_END], goal, cloud.reshape(n, -1), privileged]
        obs = np.concatenate(parts, axis=1, dtype=np.float32)
        clip = self.config.obs_clip
        return np.clip(obs, -clip, clip, out=obs)

    def _world_cloud(self) -> np.ndarray:
        if self._surface is not None:
            return self._surface.sample(self._sensor("object_pos"), self._sensor("object_quat"), self._cloud_rng)
        assert self._rig is not None
        # The sensors describe the state one substep before the rays do; the 1 cm radius margin covers that.
        points, valid = self._rig.capture(self.sim.batch, self._target_geoms, self._sensor("object_pos"),
                                          self._object_radius, self._cloud_rng)  # fmt: skip
        cloud, count = resample_cloud(points, valid, NUM_POINTS, self._cloud_rng)
        seen = count > 0
        self._held_cloud[seen] = cloud[seen]
        self.visible_points = count
        return self._held_cloud.copy()

    def _bounding_radii(self) -> np.ndarray:
        """Per env, the radius around the object frame origin that encloses every object geom (plus 1 cm)."""
        radius = {}
        for obj in self.objects:
            if obj.name not in radius:
                m = self.scene.object_model(obj)
                geoms = [g for g in self.layout.object_geoms if m.geom_group[g] != _EMPTY_SLOT_GROUP]
                radius[obj.name] = max(float(np.linalg.norm(m.geom_pos[g]) + m.geom_rbound[g]) for g in geoms)
        return np.array([radius[o.name] for o in self.objects]) + 0.01
