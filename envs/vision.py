"""Layout and settings of the ``ResDexVision`` observation: a student part and a privileged part in one flat Box.

imitation's DAgger asks the expert and the student about the *same* observation and needs a Box space, so both
inputs travel in one vector and each network reads its own slices (as the reference's 1763-d buffer does)::

    [ student part                                          | privileged part (expert only)     ]
    [ proprio 125                | cloud 512 x 3 = 1536     | hyper observation 202             ]
      0:22    hand joint positions, unscaled to [-1, 1]        the full ``ResDexHyper`` observation
      22:87   5 fingertips x (pos 3, quat 4, linvel 3,         (object position, rotation, velocities,
              angvel 3)                                        goal - object, 0.1 x shape code ...),
      87:92   fingertip touch x 0.1                            bit for bit what the hyper-policy was
      92:95   hand point                                       trained on
      95:98   root Euler angles
      98:122  previous action (24)
      122:125 goal position
      125:1661 cloud, point-major (x0, y0, z0, x1, ...)

Every position, vector and point is in the frame of the hand's start yaw, like the rest of the observations.
The proprio block is the base observation's hand part (``obs[0:122]``) plus the goal, i.e. the reference's
student input ``obs[0:147]`` without the dropped force/torque block: no object position, rotation, velocity or
shape code. The cloud comes from one of ``CLOUD_MODES``:

- ``gt_pose`` (the paper's): 512 farthest-point samples of the object's stored surface points, moved by the
  true object pose. Nothing is hidden: the back side, the bottom and points under the fingers are all there.
- ``camera`` (ours): what fixed depth cameras around the table see (``DEFAULT_CAMERAS``): visible surface only,
  the hand occluding the object, depth noise, dropout, cropped to the workspace, resampled to 512 points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from envs.config import TaskConfig
from envs.task import observation_dim

#: Width of the hand part of the base observation: everything before its last two fields (object position,
#: goal - object position).
HAND_OBS_END = observation_dim(TaskConfig(obs_mode="base")) - 6
GOAL_DIM = 3
#: Student proprioception: hand part of the base observation, then the goal position.
PROPRIO_DIM = HAND_OBS_END + GOAL_DIM
#: Points per cloud.
NUM_POINTS = 512
CLOUD_DIM = 3 * NUM_POINTS
#: Everything the student may read.
STUDENT_DIM = PROPRIO_DIM + CLOUD_DIM

PROPRIO = slice(0, PROPRIO_DIM)
CLOUD = slice(PROPRIO_DIM, STUDENT_DIM)
#: The privileged part: the hyper observation, from ``STUDENT_DIM`` to the end.
PRIVILEGED = slice(STUDENT_DIM, None)

CLOUD_MODES = ("gt_pose", "camera")


@dataclass(frozen=True)
class DepthCamera:
    """A fixed pinhole depth camera (world frame), sampled at its pixel grid.

    :param name: label, for messages.
    :param position: optical centre, metres.
    :param target: point the optical axis goes through.
    :param fovy: vertical field of view, degrees.
    :param width: image width, pixels.
    :param height: image height, pixels.
    """

    name: str
    position: tuple[float, float, float]
    target: tuple[float, float, float]
    fovy: float = 58.0
    width: int = 848
    height: int = 480

    def frame(self) -> np.ndarray:
        """(3, 3) rows: right, up, forward (world vectors); forward is the optical axis."""
        forward = np.subtract(self.target, self.position).astype(float)
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        if np.linalg.norm(right) < 1e-6:  # looking straight down or up: any horizontal right axis
            right = np.array([1.0, 0.0, 0.0])
        right /= np.linalg.norm(right)
        return np.stack([right, np.cross(right, forward), forward])


def ring_of_cameras(
    count: int = 3, radius: float = 0.6, height: float = 1.05, look_at_z: float = 0.7
) -> tuple[DepthCamera, ...]:
    """``count`` cameras evenly spaced in azimuth on a horizontal circle around the table centre."""
    cams = []
    for k in range(count):
        azimuth = 2.0 * np.pi * k / count
        pos = (radius * float(np.cos(azimuth)), radius * float(np.sin(azimuth)), height)
        cams.append(DepthCamera(f"cam{k}", pos, (0.0, 0.0, look_at_z)))
    return tuple(cams)


#: Three RealSense-D435-like depth cameras (848 x 480, 87 x 58 degrees) 120 degrees apart, 0.6 m from the table
#: centre and 0.45 m above the table top, aimed at (0, 0, 0.7): 30 degrees down, so one view spans the object
#: resting on the table (z 0.6-0.75) and lifted to the goal (z 0.9). Why this rig: the hand comes from above,
#: so a top view would mostly see the back of the hand; three side views 120 degrees apart see every vertical
#: face of an object within 60 degrees of some camera, and a finger blocks at most one or two of them.
DEFAULT_CAMERAS: tuple[DepthCamera, ...] = ring_of_cameras()


@dataclass(frozen=True)
class VisionConfig:
    """Point-cloud settings of ``ResDexVision``.

    :param cloud_mode: ``gt_pose`` or ``camera`` (see the module docstring).
    :param privileged: fill the privileged part (DAgger's expert reads it); False writes zeros there, which is
        what a deployed student gets and what student evaluation uses.
    :param fps_variants: ``gt_pose``: farthest-point subsets precomputed per object, each from another random
        start point; every step picks one at random per env (the reference draws a fresh start every step, and
        FPS in the object frame does not depend on the pose, so only the start point varies).
    :param cameras: ``camera``: the depth cameras (``DepthCamera`` or its keyword mappings).
    :param rays_per_camera: ``camera``: pixels cast per camera and env per step, drawn at random among those
        whose ray can reach the object's bounding sphere (rays outside it cannot hit the object).
    :param depth_noise: ``camera``: (sigma at zero range, growth per squared metre): the depth error along a
        ray is Gaussian with ``sigma = a + b * depth^2``, as structured-light / stereo sensors; defaults give
        about 2 mm at 0.7 m.
    :param dropout: ``camera``: probability that a pixel returns no depth.
    :param grazing_cos: ``camera``: returns from surfaces seen at a grazing angle (|cos| between ray and surface
        normal below this) are dropped, as real depth sensors lose them.
    :param depth_range: ``camera``: (min, max) metres the sensor measures.
    :param workspace_low: ``camera``: world-frame lower corner of the crop box (just above the table top).
    :param workspace_high: ``camera``: its upper corner.
    """

    cloud_mode: str = "gt_pose"
    privileged: bool = True
    fps_variants: int = 8
    cameras: tuple[DepthCamera, ...] = field(default=DEFAULT_CAMERAS)
    rays_per_camera: int = 256
    depth_noise: tuple[float, float] = (0.001, 0.0025)
    dropout: float = 0.1
    grazing_cos: float = 0.15
    depth_range: tuple[float, float] = (0.15, 1.5)
    workspace_low: tuple[float, float, float] = (-0.35, -0.35, 0.603)
    workspace_high: tuple[float, float, float] = (0.35, 0.35, 1.2)

    def __post_init__(self) -> None:
        if self.cloud_mode not in CLOUD_MODES:
            raise ValueError(f"cloud_mode {self.cloud_mode!r} is not one of {CLOUD_MODES}")
        cams = tuple(c if isinstance(c, DepthCamera) else DepthCamera(**c) for c in self.cameras)
        object.__setattr__(self, "cameras", cams)  # frozen: normalise mappings from YAML once, here
        if not cams:
            raise ValueError("camera mode needs at least one camera")
        if self.rays_per_camera < 1 or self.fps_variants < 1:
            raise ValueError("rays_per_camera and fps_variants must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> VisionConfig:
        """Build from keyword options, naming any unknown key."""
        known = set(VISION_OPTIONS)
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ValueError(f"unknown vision option(s) {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


#: Option names ``VisionConfig`` takes (they may sit among the task options of a ``ResDexVision`` env).
VISION_OPTIONS: tuple[str, ...] = tuple(f.name for f in fields(VisionConfig))


def split_vision_options(kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(vision options, everything else)."""
    vision = {k: v for k, v in kwargs.items() if k in VISION_OPTIONS}
    return vision, {k: v for k, v in kwargs.items() if k not in VISION_OPTIONS}


def cloud_points(obs: np.ndarray) -> np.ndarray:
    """The clouds of a batch of observations as ``(..., NUM_POINTS, 3)`` (a view)."""
    return obs[..., CLOUD].reshape(*obs.shape[:-1], NUM_POINTS, 3)

