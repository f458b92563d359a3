"""The layers hold: the world imports no learning code, and no package imports one that imports it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LEARNING = ("torch", "stable_baselines3", "sb3_contrib", "rl_zoo3", "imitation", "sklearn")


def test_importing_the_world_loads_no_learning_code():
    probe = ("import sys, envs, gymnasium as gym; "
             f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({LEARNING!r}))); "
             "print(sorted(k for k in gym.registry if k.startswith('ResDex')))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    loaded, ids = done.stdout.splitlines()
    assert loaded == "[]"  # a fresh interpreter: nothing imported it before
    assert ids == "['ResDexBase-v0', 'ResDexHyper-v0', 'ResDexVision-v0']"  # and the gym ids are registered


def test_no_package_imports_one_that_imports_it_back():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "import_graph.py")], cwd=REPO, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout
    assert "no package cycles" in done.stdout
    assert "envs -> " not in done.stdout  # the world depends on nothing of ours


def test_the_import_graph_tool_finds_a_planted_cycle(tmp_path):
    for package, imports in (("envs", "from resdex_sb3.x import y"), ("resdex_sb3", "import envs.a"),
                             ("callbacks", "")):  # fmt: skip
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
        (tmp_path / package / "a.py").write_text(f"def f():\n    {imports or 'pass'}\n")  # lazy imports count
    (tmp_path / "resdex_sb3" / "x.py").write_text("y = 1\n")
    done = subprocess.run([sys.executable, str(REPO / "tools" / "import_graph.py"), "--root", str(tmp_path)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1
    assert "cycle: envs <-> resdex_sb3" in done.stdout


def test_another_projects_envs_package_is_named_instead_of_silently_used(tmp_path):
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "__init__.py").write_text("")  # someone else's `envs`, earlier on the path
    env = {"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", "import resdex_sb3"], cwd=tmp_path.parent, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert f"'envs' resolves to {tmp_path / 'envs'}" in last and str(REPO / "envs") in last
