"""Offscreen frames of one simulation (MuJoCo's renderer; EGL or OSMesa on headless machines)."""

from __future__ import annotations

import os

import mujoco
import numpy as np


class RenderUnavailableError(RuntimeError):
    """No OpenGL context could be made for offscreen rendering."""


#: Shadow map size, pixels, and multisamples per pixel of the frames: MuJoCo's 4096 and 4 are sized for large
#: screens, and in software OpenGL the shadow map and the multisampling cost most of a frame (a 240 x 180 frame
#: costs about 4x less with these, shadows kept: benchmarks/render_cost.py).
SHADOW_MAP_SIZE = 1024
MULTISAMPLES = 0


class FrameRenderer:
    """Offscreen renderer that follows the model it is asked to draw (objects differ per simulation).

    :param height: image height, pixels.
    :param width: image width, pixels.
    :param shadow_map_size: shadow map size, pixels (MuJoCo's own: 4096).
    :param multisamples: multisamples per pixel, 0 for none (MuJoCo's own: 4).
    """

    def __init__(self, height: int = 480, width: int = 640, shadow_map_size: int = SHADOW_MAP_SIZE,
                 multisamples: int = MULTISAMPLES) -> None:  # fmt: skip
        self.height, self.width = height, width
        self.shadow_map_size, self.multisamples = shadow_map_size, multisamples
        self._renderer: mujoco.Renderer | None = None
        self._model: mujoco.MjModel | None = None

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: str = "front") -> np.ndarray:
        if self._model is not model:
            self.close()
            quality = model.vis.quality
            saved = quality.shadowsize, quality.offsamples
            # the context reads them when it is made; the model is the simulation's, so they are given back
            quality.shadowsize, quality.offsamples = self.shadow_map_size, self.multisamples
            try:
                self._renderer = mujoco.Renderer(model, self.height, self.width)
            except Exception as err:  # the GL backends raise different types
                backend = os.environ.get("MUJOCO_GL", "(unset: glfw, which needs a display)")
                raise RenderUnavailableError(
                    f"offscreen rendering is unavailable with MUJOCO_GL={backend}: {err}. On a headless machine "
                    "set MUJOCO_GL=egl (libegl1) or MUJOCO_GL=osmesa (apt-get install libosmesa6)."
                ) from err
            finally:
                quality.shadowsize, quality.offsamples = saved
            self._model = model
        assert self._renderer is not None
        self._renderer.update_scene(data, camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._renderer, self._model = None, None
