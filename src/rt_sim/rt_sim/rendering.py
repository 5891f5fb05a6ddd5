"""Offscreen rendering of the head camera, headless (EGL by default), with a clear error when no GL works."""

from __future__ import annotations

import os

import mujoco
import numpy as np

from rt_sim import GL_PACKAGES_HINT


class RenderingUnavailable(RuntimeError):
    """No OpenGL backend could create an offscreen context."""


class CameraRenderer:
    """Renders one named camera of a model into HxWx3 uint8 RGB images."""

    def __init__(self, model: mujoco.MjModel, camera: str, width: int, height: int) -> None:
        if model.vis.global_.offwidth < width or model.vis.global_.offheight < height:
            raise ValueError(
                f"image {width}x{height} exceeds the model's offscreen buffer "
                f"{model.vis.global_.offwidth}x{model.vis.global_.offheight}"
            )
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:
            backend = os.environ.get("MUJOCO_GL", "(unset)")
            raise RenderingUnavailable(f"cannot render with MUJOCO_GL={backend}: {exc}. {GL_PACKAGES_HINT}") from exc
        self.camera = camera
        self.width, self.height = width, height

    def render(self, data: mujoco.MjData) -> np.ndarray:
        self._renderer.update_scene(data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()
