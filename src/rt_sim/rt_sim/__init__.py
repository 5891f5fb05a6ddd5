"""MuJoCo mobile-manipulator simulation: sim node, tasks, scripted expert, collection."""

import os

GL_PACKAGES_HINT = (
    "headless rendering needs an OpenGL backend: for MUJOCO_GL=egl (the default) install the Debian packages "
    "libegl1 libegl-mesa0 libgl1-mesa-dri; for MUJOCO_GL=osmesa install libosmesa6. MUJOCO_GL must be set "
    "before mujoco is first imported."
)

# MuJoCo binds its OpenGL backend when it is first imported: headless EGL (Mesa) unless told otherwise.
os.environ.setdefault("MUJOCO_GL", "egl")
try:
    import mujoco  # noqa: F401
except Exception as err:  # PyOpenGL fails with AttributeError/OSError, not ImportError, when a library is missing
    raise ImportError(f"mujoco cannot load MUJOCO_GL={os.environ['MUJOCO_GL']}: {err!r}. {GL_PACKAGES_HINT}") from err
