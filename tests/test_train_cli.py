"""``resdex_sb3.train`` on a run folder: a rerun never replaces a run by accident, ``--resume`` finishes the
original budget after a kill, ``--overwrite`` replaces deliberately, and a failed start leaves no folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from resdex_sb3.run_folder import model_steps

REPO = Path(__file__).resolve().parents[1]
#: the smallest run: 16 envs x 8 steps = 128 env steps per rollout, a checkpoint after each
SMOKE = ["--algo", "ppo", "--env", "ResDexBase", "--preset", "smoke", "--save-freq", "128",
         "--env-kwargs", "object_set:'embedded-small'"]  # fmt: skip


def _train(run: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resdex_sb3.train", *SMOKE, "--run-dir", str(run), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)  # fmt: skip


def _steps(run: Path) -> int:
    return json.loads((run / "checkpoint.json").read_text())["num_timesteps"]


def _one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


def test_a_rerun_is_refused_resume_finishes_the_budget_and_overwrite_replaces(tmp_path):
    run = tmp_path / "base"
    first = _train(run, "-n", "256")
    assert first.returncode == 0, first.stderr[-3000:]
    assert _steps(run) == 256

    # the same command again: refused, naming the flags that continue or replace the run; nothing changes
    line = _one_line_error(_train(run, "-n", "256"))
    assert str(run) in line and "--resume" in line and "-i " in line and "--overwrite" in line
    assert _steps(run) == 256 and model_steps(run / "ResDexBase-v0.zip") == 256

    # killed after its checkpoint at 256 of a 512-step budget: no final model. --resume trains the 256 missing
    (run / "ResDexBase-v0.zip").unlink()
    resumed = _train(run, "-n", "512", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at 256 of 512 steps: 256 more" in resumed.stdout
    assert _steps(run) == 512 and model_steps(run / "ResDexBase-v0.zip") == 512
    again = _train(run, "-n", "512", "--resume")  # finished: nothing more to train
    assert again.returncode == 0 and "nothing to train" in again.stdout, again.stderr[-3000:]
    assert _steps(run) == 512

    # --overwrite deletes the old run and trains a new one from 0
    replaced = _train(run, "-n", "128", "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert "deleting the run" in replaced.stderr
    assert _steps(run) == 128 and model_steps(run / "ResDexBase-v0.zip") == 128


def test_a_run_that_fails_at_start_up_leaves_no_folder(tmp_path):
    run = tmp_path / "new" / "base"
    # an unknown env option fails while the env is built, after rl-zoo made the run's folders
    line = _one_line_error(_train(run, "-n", "128", "--env-kwargs", "colour:'red'"))
    assert "colour" in line
    for option in ("object_set", "objects", "split", "reward_mode"):  # builder options and task options
        assert f"'{option}'" in line
    assert not (tmp_path / "new").exists()
    line = _one_line_error(_train(run, "-n", "128", "--preset", "huge"))  # a preset the YAML lacks
    assert "'huge'" in line and "ppo.yml" in line
    assert not (tmp_path / "new").exists()


def test_contradictory_or_missing_continuation_flags_are_refused_before_anything_is_made(tmp_path, capsys):
    from resdex_sb3.train import main  # in-process: these are refused before rl-zoo is loaded

    run = tmp_path / "base"
    cases = [
        (["--resume", "--overwrite"], "give one of them"),
        (["--resume", "-i", str(tmp_path / "x.zip")], "drop -i"),
        (["-i", str(tmp_path / "missing.zip")], "missing.zip"),
    ]
    for args, message in cases:
        assert main([*SMOKE, "--run-dir", str(run), "-n", "128", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)
    assert not run.exists()
