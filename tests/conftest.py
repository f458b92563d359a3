import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import envs  # noqa: E402,F401  (registers the gym ids)
from subprocess_cli import run_module  # noqa: E402

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


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """A data directory holding the small embedded set with grasp proposals (the grasp distance D needs them;
    ~40 s once per session), shared read-only by the pipeline, Ray and ablation tests."""
    from envs.objects.build import build_embedded
    from envs.objects.store import ObjectStore

    data = tmp_path_factory.mktemp("small_data")
    build_embedded(ObjectStore(data), "small", proposals=True)
    return data


@pytest.fixture(scope="session")
def smoke_pipeline(small_data, tmp_path_factory):
    """The whole smoke pipeline, run serially once per session on ``small_data``. Read-only: a test that changes
    it works on a copy (``shutil.copytree``)."""
    out = tmp_path_factory.mktemp("smoke_pipeline") / "pipe"
    done = run_module("resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out), data=small_data)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return out
