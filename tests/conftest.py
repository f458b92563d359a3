import os

os.environ.setdefault("MUJOCO_GL", "egl")

import envs  # noqa: E402,F401  (registers the gym ids)
