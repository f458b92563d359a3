"""The run folder: paths saved relative to the run, plain-YAML configs, the object-set checksum, checkpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from envs.objects.catalog import load_object_set
from resdex_sb3.run_evaluation import evaluate_run, result_json
from resdex_sb3.run_folder import (OBJECT_SET_CHECKSUM, read_run_config, checkpoint_steps, load_run, resolve_run_path,
                                   finished_rounds, resume_point, run_relative_paths)  # fmt: skip

REPO = Path(__file__).resolve().parents[1]


def test_paths_become_run_relative_once_and_resolve_only_against_the_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "runs" / "hyper"
    (tmp_path / "runs" / "base-0").mkdir(parents=True)
    (tmp_path / "runs" / "shape").mkdir()
    (tmp_path / "runs" / "shape" / "codes.json").write_text("{}")
    run.mkdir()
    given = {"base_models": ["runs/base-0", "../base-0", str(tmp_path / "runs" / "base-0")],  # cwd, run, absolute
             "shape_codes": "runs/shape/codes.json", "reward_mode": "stage1"}  # fmt: skip
    saved = run_relative_paths(given, run)
    assert saved == {"base_models": ["../base-0"] * 3, "shape_codes": "../shape/codes.json", "reward_mode": "stage1"}
    assert run_relative_paths(saved, run) == saved  # idempotent: a continued run saves the same
    assert resolve_run_path("../base-0", run) == run / "../base-0"
    with pytest.raises(FileNotFoundError, match="relative to that run folder"):
        resolve_run_path("runs/base-0", run)  # a working-directory path is not guessed when reading a run back


def test_run_configs_are_read_with_a_safe_loader(tmp_path):
    rl_zoo_style = tmp_path / "old.yml"  # what rl-zoo wrote before: an OrderedDict as a python tag
    rl_zoo_style.write_text("!!python/object/apply:collections.OrderedDict\n- - - n_envs\n    - 4\n  - - env_kwargs\n"
                            "    - objects: [cube]\n")  # fmt: skip
    assert read_run_config(rl_zoo_style) == {"n_envs": 4, "env_kwargs": {"objects": ["cube"]}}
    hostile = tmp_path / "hostile.yml"
    hostile.write_text("!!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ValueError, match="unreadable run config"):
        read_run_config(hostile)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "base"
    subprocess.run([sys.executable, "-m", "resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase", "--preset",
                    "smoke", "--run-dir", str(run), "--env-kwargs", "object_set:'embedded-small'", "-n", "256"],
                   cwd=REPO, check=True, capture_output=True)  # fmt: skip
    return run


def test_a_run_records_its_object_set_and_evaluate_warns_on_other_data(smoke_run, capsys):
    config = yaml.safe_load((smoke_run / "ResDexBase-v0" / "config.yml").read_text())  # plain YAML
    objset = load_object_set("embedded-small")
    assert config[OBJECT_SET_CHECKSUM] == objset.checksum
    assert checkpoint_steps(smoke_run) == 256
    result = evaluate_run(smoke_run, "train", trials=1)
    assert result_json(result, "train", str(smoke_run))["object_set_checksum"] == objset.checksum
    assert "warning" not in capsys.readouterr().err
    config[OBJECT_SET_CHECKSUM] = "0" * 64  # as if trained on another build of the set
    (smoke_run / "ResDexBase-v0" / "config.yml").write_text(yaml.safe_dump(config))
    assert load_run(smoke_run).object_set_checksum == "0" * 64
    evaluate_run(smoke_run, "train", trials=1)
    assert "was made on object set 'embedded-small' with checksum 000000000000" in capsys.readouterr().err


def test_a_resumed_runs_curve_and_training_time_leave_out_the_gap_between_its_processes(tmp_path):
    """A run killed and continued hours later: its wall-time axis counts training only, and a step the continuation
    logged again keeps the newer value."""
    from torch.utils.tensorboard import SummaryWriter

    from resdex_sb3.curves import read_scalar, training_seconds

    t0 = 1_700_000_000.0
    # (process, [(step, wall time, value)]): the first trains 100 s; the second starts 5,000 s later, from the step-2
    # checkpoint, and trains 50 s
    processes = {"first": [(1, t0, 0.1), (2, t0 + 60, 0.2), (3, t0 + 100, 0.3)],
                 "second": [(3, t0 + 5_100, 0.35), (4, t0 + 5_150, 0.4)]}  # fmt: skip
    for name, points in processes.items():
        writer = SummaryWriter(str(tmp_path / "tb" / name), filename_suffix=f".{name}")
        for step, wall, value in points:
            writer.add_scalar("eval/success", value, step, walltime=wall)
        writer.close()
    assert training_seconds(tmp_path) == pytest.approx(150.0)
    steps, values = read_scalar(tmp_path, "eval/success")
    assert steps == [1, 2, 3, 4] and values == pytest.approx([0.1, 0.2, 0.35, 0.4])
    hours, _ = read_scalar(tmp_path, "eval/success", "wall")
    assert [h * 3600 for h in hours] == pytest.approx([0.0, 60.0, 100.0, 150.0])


def test_a_resume_counts_the_steps_saved_in_the_checkpoint_not_a_json_left_behind_by_a_kill(tmp_path):
    """A kill between replacing ``checkpoint.zip`` and ``checkpoint.json`` leaves the JSON one checkpoint behind;
    the resume must continue from the model's own step count, or it would train a save interval past its budget."""
    import zipfile

    assert resume_point(tmp_path, "ResDexBase-v0") is None
    with zipfile.ZipFile(tmp_path / "checkpoint.zip", "w") as archive:
        archive.writestr("data", json.dumps({"num_timesteps": 400}))
    assert resume_point(tmp_path, "ResDexBase-v0") is None  # a checkpoint counts once its JSON was written
    (tmp_path / "checkpoint.json").write_text(json.dumps({"num_timesteps": 200, "model": "checkpoint.zip"}))
    assert resume_point(tmp_path, "ResDexBase-v0") == (tmp_path / "checkpoint.zip", 400)
    with zipfile.ZipFile(tmp_path / "ResDexBase-v0.zip", "w") as archive:
        archive.writestr("data", json.dumps({"num_timesteps": 512}))
    assert resume_point(tmp_path, "ResDexBase-v0") == (tmp_path / "ResDexBase-v0.zip", 512)


def test_a_student_run_counts_the_rounds_behind_its_saved_student_not_its_last_trainer_checkpoint(tmp_path):
    """An extended DAgger run killed after a periodic trainer checkpoint (``rounds_done`` 12) but before its new
    student was saved still holds the round-6 student: it is not finished. Records from before ``student_rounds``
    existed count ``rounds_done``."""
    assert finished_rounds(tmp_path) == 0
    (tmp_path / "ResDexVision-v0.zip").write_bytes(b"student")
    (tmp_path / "progress.json").write_text(json.dumps({"rounds_done": 12, "student_rounds": 6}))
    assert finished_rounds(tmp_path) == 6
    (tmp_path / "progress.json").write_text(json.dumps({"rounds_done": 6}))
    assert finished_rounds(tmp_path) == 6


def test_statistics_that_are_missing_or_truncated_are_one_error_naming_the_file(tmp_path):
    """A run that normalised its observations is refused without its ``vecnormalize.pkl`` (its model would act on
    raw observations without a word), and a truncated statistics file is a user error naming it."""
    from resdex_sb3.errors import UserError
    from resdex_sb3.run_folder import observation_stats

    run = tmp_path / "run"
    (run / "ResDexBase-v0").mkdir(parents=True)
    (run / "ResDexBase-v0.zip").write_bytes(b"model")
    (run / "ResDexBase-v0" / "config.yml").write_text(yaml.safe_dump({"normalize": "dict(norm_obs=True)"}))
    with pytest.raises(FileNotFoundError, match=r"vecnormalize.pkl is missing: run .* normalised its observations"):
        load_run(run)
    (run / "ResDexBase-v0" / "vecnormalize.pkl").write_bytes(b"\x80\x04\x95")
    assert load_run(run).stats_path == run / "ResDexBase-v0" / "vecnormalize.pkl"
    with pytest.raises(UserError, match="vecnormalize.pkl: unreadable normalisation statistics"):
        observation_stats(run / "ResDexBase-v0" / "vecnormalize.pkl", 128)
    mean, std, clip = observation_stats(None, 3)
    assert mean.tolist() == [0, 0, 0] and std.tolist() == [1, 1, 1] and clip == float("inf")
