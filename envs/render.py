"""Offscreen frames of one simulation (MuJoCo's renderer; EGL or OSMesa on headless machines)."""

from __future__ import annotations

import os

import mujoco
import numpy as np


class RenderUnavailableError(RuntimeError):
    """No OpenGL context could be made for offscreen rendering."""


class FrameRenderer:
    """Offscreen renderer that follows the model it is asked to draw (objects differ per simulation).

    :param height: image height, pixels.
    :param width: image width, pixels.
    """

    def __init__(self, height: int = 480, width: int = 640) -> None:
        self.height, self.width = height, width
        self._renderer: mujoco.Renderer | None = None
        self._model: mujoco.MjModel | None = None

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: str = "front") -> np.ndarray:
        if self._model is not model:
            self.close()
            try:
                self._renderer = mujoco.Renderer(model, self.height, self.width)
            except Exception as err:  # the GL backends raise different types
                backend = os.environ.get("MUJOCO_GL", "(unset: glfw, which needs a display)")
                raise RenderUnavailableError(
                    f"offscreen rendering is unavailable with MUJOCO_GL={backend}: {err}. On a headless machine "
                    "set MUJOCO_GL=egl (libegl1) or MUJOCO_GL=osmesa (apt-get install libosmesa6)."
                ) from err
            self._model = model
        assert self._renderer is not None
        self._renderer.update_scene(data, camera)
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
        self._renderer, self._model = None, None
