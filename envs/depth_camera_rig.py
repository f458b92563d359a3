"""``camera`` point clouds: fixed depth cameras simulated with MuJoCo's batched ray casting (``Batch.ray``).

One ``Batch.ray`` call per step casts every camera's rays in every env against the real scene geometry (object,
table, hand visual meshes), so only the surface a camera actually sees comes back and the hand occludes the
object. What the student gets is then a real depth sensor's output after a standard tabletop pipeline:

1. pixels: each camera casts ``rays_per_camera`` pixels of its (width x height) grid per step;
2. segmentation: returns from the object's geoms are kept, which stands for cropping the table plane and
   filtering the robot's own points with its known kinematics (a perfect self-filter);
3. sensor artefacts: Gaussian depth noise growing with range squared, random pixel dropout, no return at
   grazing angles, nothing outside the sensor's depth range;
4. crop: points outside the workspace box are dropped.

Which pixels are cast: a pixel can only see the object if its ray passes through the object's bounding sphere,
so rays are drawn uniformly inside that cone (then snapped to the pixel grid) instead of over the whole image.
This is a culling step that saves the rays which would certainly miss; every point returned is still a ray hit
on visible surface. Uniform in the cone is uniform over the object's pixels up to the cos^3 pixel-density
change across a cone a few degrees wide (under 5 %).
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import mujoco.batch
import numpy as np

from envs.vision import DepthCamera, VisionConfig


class DepthCameraRig:
    """Fixed pinhole depth cameras cast in every env of a ``mujoco.batch.Batch`` at once.

    :param cameras: the cameras (world frame).
    :param rays_per_camera: pixels cast per camera and env per call.
    :param depth_noise: (a, b): depth noise sigma ``a + b * depth^2`` metres.
    :param dropout: probability that a pixel returns nothing.
    :param grazing_cos: returns whose |cos(ray, surface normal)| is below this are dropped.
    :param depth_range: (min, max) depth the sensor returns, metres.
    :param workspace_low: lower corner of the world-frame crop box.
    :param workspace_high: upper corner of the crop box.
    :param geom_groups: geom groups the cameras see: the scene's object, table and hand *visual* meshes are in
        groups 0-1; group 4 holds the hand's collision capsules (duplicates of the visual hand) and group 5
        empty object slots, so neither is rendered.
    """

    def __init__(
        self,
        cameras: Sequence[DepthCamera],
        rays_per_camera: int = 256,
        depth_noise: tuple[float, float] = (0.001, 0.0025),
        dropout: float = 0.1,
        grazing_cos: float = 0.15,
        depth_range: tuple[float, float] = (0.15, 1.5),
        workspace_low: tuple[float, float, float] = (-np.inf, -np.inf, -np.inf),
        workspace_high: tuple[float, float, float] = (np.inf, np.inf, np.inf),
        geom_groups: Sequence[int] = (0, 1, 2, 3),
    ) -> None:
        if not cameras:
            raise ValueError("DepthCameraRig needs at least one camera")
        self.cameras = tuple(cameras)
        self.rays_per_camera = int(rays_per_camera)
        self.depth_noise = tuple(float(v) for v in depth_noise)
        self.dropout = float(dropout)
        self.grazing_cos = float(grazing_cos)
        self.depth_range = tuple(float(v) for v in depth_range)
        self.workspace_low = np.asarray(workspace_low, dtype=float)
        self.workspace_high = np.asarray(workspace_high, dtype=float)
        self.geomgroup = np.zeros(mujoco.mjNGROUP, dtype=np.uint8)
        self.geomgroup[list(geom_groups)] = 1
        self.positions = np.array([c.position for c in self.cameras], dtype=float)  # (C, 3)
        self.frames = np.stack([c.frame() for c in self.cameras])  # (C, 3, 3): right, up, forward rows
        self.tan_y = np.tan(np.radians([c.fovy for c in self.cameras]) / 2.0)  # (C,)
        self.width = np.array([c.width for c in self.cameras])
        self.height = np.array([c.height for c in self.cameras])
        self.tan_x = self.tan_y * self.width / self.height  # square pixels
        # ray origins, the same in every env: camera c's R rays are columns c*R .. (c+1)*R - 1
        self._origins = np.repeat(self.positions, self.rays_per_camera, axis=0)

    @classmethod
    def from_config(cls, config: VisionConfig) -> DepthCameraRig:
        return cls(config.cameras, config.rays_per_camera, config.depth_noise, config.dropout, config.grazing_cos,
                   config.depth_range, config.workspace_low, config.workspace_high)  # fmt: skip

    @property
    def num_rays(self) -> int:
        """Rays per env per call (all cameras)."""
        return len(self.cameras) * self.rays_per_camera

    def capture(
        self,
        batch: mujoco.batch.Batch,
        target_geoms: np.ndarray,
        centres: np.ndarray,
        radii: np.ndarray,
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cast every camera in every simulation of ``batch`` at its current state.

        :param batch: the simulations (their kinematics are recomputed from the state; the state is untouched).
        :param target_geoms: bool per geom id: which geoms are the segmented object.
        :param centres: (N, 3) centres of spheres enclosing each env's object (culling only, see the module).
        :param radii: (N,) their radii.
        :param rng: noise, dropout and pixel draws.
        :return: world-frame points ``(N, C * R, 3)`` and a mask ``(N, C * R)`` of the valid ones.
        """
        n, c, r = len(centres), len(self.cameras), self.rays_per_camera
        directions, in_image = self._pixel_rays(centres, radii, rng)  # (N, C, R, 3), (N, C, R)
        vec = directions.reshape(n, c * r, 3)
        dist, geom, normal = batch.ray(self._origins, vec, geomgroup=self.geomgroup, normal=True)
        hit = (geom >= 0) & target_geoms[np.maximum(geom, 0)]
        lo, hi = self.depth_range
        valid = hit & in_image.reshape(n, c * r) & (dist >= lo) & (dist <= hi)
        valid &= rng.random(valid.shape) >= self.dropout
        valid &= np.abs((normal * vec).sum(axis=-1)) >= self.grazing_cos
        a, b = self.depth_noise
        depth = dist + rng.standard_normal(dist.shape) * (a + b * dist * dist)
        points = self._origins[None] + vec * depth[..., None]
        valid &= np.all((points >= self.workspace_low) & (points <= self.workspace_high), axis=-1)
        return points, valid

    def _pixel_rays(
        self, centres: np.ndarray, radii: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unit world rays through pixel centres, drawn uniformly in each camera's cone around each bounding
        sphere; and whether each pixel is inside its image. Works in camera coordinates (right, up, forward)."""
        n, c, r = len(centres), len(self.cameras), self.rays_per_camera
        to_centre = centres[:, None, :] - self.positions[None]  # (N, C, 3) world
        axis = np.matmul(self.frames[None], to_centre[..., None])[..., 0]  # (N, C, 3) camera coordinates
        distance = np.linalg.norm(axis, axis=-1)
        axis /= distance[..., None]
        cos_half = np.sqrt(1.0 - np.clip(radii[:, None] / distance, 0.0, 1.0) ** 2)
        # uniform directions in the cone: cos(theta) uniform in [cos_half, 1], azimuth uniform
        cos_t = 1.0 - rng.random((n, c, r)) * (1.0 - cos_half)[..., None]
        sin_t = np.sqrt(np.maximum(1.0 - cos_t * cos_t, 0.0))
        phi = rng.random((n, c, r)) * (2.0 * np.pi)
        a, b = sin_t * np.cos(phi), sin_t * np.sin(phi)
        # an orthonormal pair around the axis; the axis is never along the camera's "up" for a target in view
        e1 = np.cross(axis, [0.0, 1.0, 0.0])
        e1 /= np.maximum(np.linalg.norm(e1, axis=-1, keepdims=True), 1e-12)
        e2 = np.cross(axis, e1)
        x, y, z = (cos_t * axis[..., k, None] + a * e1[..., k, None] + b * e2[..., k, None] for k in range(3))
        # snap to the pixel grid: image-plane coordinates -> pixel index -> the ray through its centre
        ahead = z > 1e-6
        z = np.where(ahead, z, 1.0)
        tan_x, tan_y = self.tan_x[:, None], self.tan_y[:, None]
        width, height = self.width[:, None], self.height[:, None]
        col = np.floor((x / z / tan_x + 1.0) * (0.5 * width))
        row = np.floor((1.0 - y / z / tan_y) * (0.5 * height))
        in_image = ahead & (col >= 0) & (col < width) & (row >= 0) & (row < height)
        u = ((col + 0.5) * (2.0 / width) - 1.0) * tan_x
        v = (1.0 - (row + 0.5) * (2.0 / height)) * tan_y
        camera_rays = np.stack([u, v, np.ones_like(u)], axis=-1)  # (N, C, R, 3)
        camera_rays /= np.linalg.norm(camera_rays, axis=-1, keepdims=True)
        world = np.matmul(camera_rays, self.frames[None])  # rows of the frame are the camera axes in world
        return world, in_image


def resample_cloud(
    points: np.ndarray, valid: np.ndarray, num_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``num_points`` of each row's valid points: a random subset when there are enough, else every valid
    point repeated in a random order. Returns the clouds ``(N, num_points, 3)`` and the valid counts ``(N,)``
    (rows with none are garbage; the caller decides what to show instead)."""
    keys = rng.random(valid.shape)
    keys[~valid] = 2.0  # invalid ones sort last
    order = np.argsort(keys, axis=1)
    count = valid.sum(axis=1)
    pick = np.arange(num_points)[None, :] % np.maximum(count, 1)[:, None]
    index = np.take_along_axis(order, pick, axis=1)
    return np.take_along_axis(points, index[..., None], axis=1), count
