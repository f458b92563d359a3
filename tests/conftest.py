import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import envs  # noqa: E402,F401  (registers the gym ids)

#: Object sets a test may load from the default data directory ($RESDEX_DATA, else data/ in the checkout).
#: Loading never builds, so they are built here, once per session; a complete, intact set is only verified
#: (well under a second). Built without grasp proposals, which take a minute: a test that needs proposals
#: builds its own set in a temporary directory.
DEFAULT_DIR_SETS = ("embedded-small",)


@pytest.fixture(scope="session", autouse=True)
def default_object_sets() -> None:
    """Build (or verify and repair) ``DEFAULT_DIR_SETS`` in the default data directory."""
    from envs.objects.build import build_object_set

    for name in DEFAULT_DIR_SETS:
        build_object_set(name, proposals=False)
