"""The smoke pipeline end to end, its resume after a killed stage, and its configuration errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from subprocess_cli import copy_pipeline, run_module

from resdex_sb3.presets import PIPELINE_CONFIG as CONFIG
from resdex_sb3.presets import load_pipeline_preset as load_preset


def test_smoke_pipeline_end_to_end_then_resume_a_killed_stage(tmp_path, small_data, smoke_pipeline):
    status = json.loads((smoke_pipeline / "pipeline.json").read_text())
    assert all(stage["status"] == "done" for stage in status.values())
    for run in ("base-0", "base-1", "hyper-stage1", "hyper", "baseline-stage1", "baseline"):
        assert (smoke_pipeline / run / "ResDexHyper-v0.zip").exists() or \
            (smoke_pipeline / run / "ResDexBase-v0.zip").exists(), run
    table = (smoke_pipeline / "results.md").read_text()
    for split in ("train", "unseen_obj", "unseen_cat"):
        assert f"| method | {split} |" in table and f"| baseline | {split} |" in table
    clusters = json.loads((smoke_pipeline / "shape" / "clusters.json").read_text())
    assert len(clusters["clusters"]) == 2
    hyper_config = yaml.safe_load((smoke_pipeline / "hyper" / "ResDexHyper-v0" / "config.yml").read_text().replace("!!python/object/apply:collections.OrderedDict", ""))
    assert "base_models" in str(hyper_config)
    baseline_config = (smoke_pipeline / "baseline" / "ResDexHyper-v0" / "config.yml").read_text()
    assert "MultiTaskPolicy" in baseline_config and "base_models" not in baseline_config
    _assert_stage2_continues_stage1(smoke_pipeline / "hyper-stage1", smoke_pipeline / "hyper")

    out = copy_pipeline(smoke_pipeline, tmp_path / "pipe")  # the session's pipeline is shared: kill a stage of a copy
    # a stage killed after its last checkpoint: final model gone, status not done -> it continues from there
    (out / "hyper" / "ResDexHyper-v0.zip").unlink()
    status = json.loads((out / "pipeline.json").read_text())
    status["hyper"]["status"] = "running"
    for key in [k for k in status if k.startswith("eval-method") or k == "report"]:
        del status[key]
    (out / "pipeline.json").write_text(json.dumps(status))
    before = json.loads((out / "hyper" / "checkpoint.json").read_text())["num_timesteps"]
    again = run_module("resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out), data=small_data)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "base-0: done, skipped" in again.stdout
    # the killed stage resumes from its checkpoint: here that one holds the whole budget, so it becomes the final
    assert f"--resume: {out / 'hyper'} reached its budget; its last checkpoint {out / 'hyper' / 'checkpoint.zip'}" \
        in again.stdout
    assert (out / "hyper" / "ResDexHyper-v0.zip").exists()
    assert json.loads((out / "hyper" / "checkpoint.json").read_text())["num_timesteps"] >= before


def _assert_stage2_continues_stage1(stage1: Path, stage2: Path) -> None:
    """Stage 2 starts from stage 1's best checkpoint: its weights and its normalisation statistics."""
    import pickle

    import torch as th
    from stable_baselines3 import PPO

    best = stage1 / "best" / "best_model.zip"
    args = (stage2 / "ResDexHyper-v0" / "args.yml").read_text()
    assert str(best) in args  # rl-zoo's -i: the model, and the statistics beside it
    with open(stage1 / "best" / "ResDexHyper-v0" / "vecnormalize.pkl", "rb") as f:
        start_stats = pickle.load(f).obs_rms
    with open(stage2 / "ResDexHyper-v0" / "vecnormalize.pkl", "rb") as f:
        end_stats = pickle.load(f).obs_rms
    assert end_stats.count > start_stats.count  # stage 2 kept adding to stage 1's statistics
    start, end = PPO.load(best, device="cpu").policy, PPO.load(stage2 / "ResDexHyper-v0.zip", device="cpu").policy
    moved = sum(float(th.sum((a - b).detach() ** 2)) for a, b in zip(start.parameters(), end.parameters()))
    reinit = type(start)(start.observation_space, start.action_space, lambda _: 1e-4,
                         **{k: v for k, v in start._get_constructor_parameters().items()
                            if k not in ("observation_space", "action_space", "lr_schedule")})  # fmt: skip
    apart = sum(float(th.sum((a - b).detach() ** 2)) for a, b in zip(start.parameters(), reinit.parameters()))
    assert moved < 0.1 * apart  # a few smoke updates away from stage 1, unlike a fresh initialisation


def test_pipeline_preset_errors(tmp_path):
    assert load_preset("smoke")["k"] >= 1
    with pytest.raises(ValueError, match="no 'huge'.*known: .*smoke"):
        load_preset("huge")
    bad = tmp_path / "pipeline.yml"
    data = yaml.safe_load(CONFIG.read_text())
    data["smoke"]["kk"] = 3
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="kk"):
        load_preset("smoke", bad)


def test_wrong_k_and_missing_base_are_clear(tmp_path, small_data):
    from resdex_sb3.shape.clusters import run_clustering

    with pytest.raises(ValueError, match="k"):
        run_clustering(10_000, "embedded-small", small_data, tmp_path / "shape")
    from envs.factory import make_vec_env
    from envs.objects.primitives import primitive_objects
    from resdex_sb3.composer import ResidualMoEComposer

    env = make_vec_env("ResDexHyper", 4, primitive_objects(), seed=0, num_threads=1)
    with pytest.raises(FileNotFoundError, match="no_such_base"):
        ResidualMoEComposer(env, [tmp_path / "no_such_base"])


def test_a_failing_base_is_retried_on_the_next_member(tmp_path, small_data, monkeypatch):
    from resdex_sb3.pipeline import Pipeline

    data = yaml.safe_load(CONFIG.read_text())
    data["smoke"].update(k=1, base_attempts=2, base_gate={"success": 1.01}, baseline=False)  # never good enough
    config = tmp_path / "pipeline.yml"
    config.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("RESDEX_DATA", str(small_data))
    pipeline = Pipeline("smoke", tmp_path / "out", config=config)
    pipeline._objects("embedded-small")
    clusters = pipeline._shape("embedded-small")
    assert len(clusters["candidates"][0]) == 2
    chosen = pipeline._train_base(0, "embedded-small", clusters["candidates"][0])
    assert not chosen["passed"] and chosen["run"] is None  # no member passed: the cluster is dropped
    assert [a["run"] for a in chosen["attempts"]] == ["base-0", "base-0-try1"]
    assert [a["object"] for a in chosen["attempts"]] == clusters["candidates"][0]
    assert (tmp_path / "out" / "base-0-try1" / "ResDexBase-v0.zip").exists()
    # a finished run asked to train on something else is moved aside, not silently reused
    assert not pipeline._same_setup(tmp_path / "out" / "base-0", {"object_set": "embedded-small",
                                                                  "objects": ["another-object"]})


def test_until_stops_after_the_named_stage(tmp_path, small_data, monkeypatch):
    from resdex_sb3.pipeline import Pipeline
    from resdex_sb3.stage import StopAfterStage

    monkeypatch.setenv("RESDEX_DATA", str(small_data))
    out = tmp_path / "out"
    with pytest.raises(StopAfterStage, match="shape"):
        Pipeline("smoke", out, until="shape").run()
    status = json.loads((out / "pipeline.json").read_text())
    assert list(status) == ["objects", "shape"] and status["shape"]["status"] == "done"
    assert not (out / "base-0").exists()


def test_stage_time_adds_up_over_failed_attempts_and_restarts_for_new_inputs(tmp_path):
    from resdex_sb3.pipeline import Pipeline

    pipeline = Pipeline("smoke", tmp_path / "out")
    pipeline.out.mkdir()

    def fail() -> None:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        pipeline._timed("stage", fail)
    pipeline.status["stage"]["seconds"] = 50.0  # as if the failed attempt had run for 50 s
    assert pipeline._timed("stage", lambda: "ok") == "ok"
    assert pipeline.status["stage"]["seconds"] >= 50.0  # the failed attempt counts
    pipeline._timed("stage", lambda *_: "again", "other input")  # done before, other inputs: a fresh count
    assert pipeline.status["stage"]["seconds"] < 50.0 and pipeline.status["stage"]["result"] == "again"
    pipeline.status["stage"]["seconds"] = 70.0
    # other inputs, but the stage finds its output complete (another stage's budget changed): its time stays
    assert pipeline._timed("stage", lambda *_: {"reused": True}, "third input") == {"reused": True}
    assert pipeline.status["stage"]["seconds"] == 70.0
    saved = json.loads((pipeline.out / "pipeline.json").read_text())
    assert saved["stage"]["status"] == "done" and saved["stage"]["seconds"] == 70.0


def test_a_cluster_without_a_passing_base_is_dropped(tmp_path, small_data, smoke_pipeline, monkeypatch):
    from resdex_sb3.pipeline import Pipeline
    from resdex_sb3.stage import StopAfterStage

    monkeypatch.setenv("RESDEX_DATA", str(small_data))
    # the session's clusters, and its trained bases without their records: each base stage runs and reuses its run
    out = copy_pipeline(smoke_pipeline, tmp_path / "out", stages=("objects", "shape"), folders=("base-0", "base-1"))
    pipeline = Pipeline("smoke", out, until="hyper-stage1")
    train_base = pipeline._train_base

    def first_cluster_fails(index: int, set_name: str, members: list[str]) -> dict:
        chosen = train_base(index, set_name, members)
        return {**chosen, "run": None, "passed": False} if index == 0 else chosen

    monkeypatch.setattr(pipeline, "_train_base", first_cluster_fails)
    with pytest.raises(StopAfterStage):
        pipeline.run()
    config = (tmp_path / "out" / "hyper-stage1" / "ResDexHyper-v0" / "config.yml").read_text()
    assert "../base-1" in config and "../base-0" not in config  # k shrank from 2 to 1


def _record_stages(out: Path, prefix: str, count: int) -> None:
    from resdex_sb3.pipeline import Pipeline

    pipeline = Pipeline("smoke", out)
    for i in range(count):
        pipeline.run_recorded(f"{prefix}-{i}", lambda: "ok", ())


def test_two_commands_on_one_folder_keep_each_others_records(tmp_path):
    """A grid making its bases through the pipeline's records while the pipeline runs, say: every write re-reads
    the file under its lock and changes only its own stage, so no record is lost."""
    import multiprocessing

    from resdex_sb3.pipeline import Pipeline

    out = tmp_path / "out"
    out.mkdir()
    first, second = Pipeline("smoke", out), Pipeline("smoke", out)
    first.run_recorded("shape", lambda: "codes", ())
    second.run_recorded("base-0", lambda: "base", ())  # second never saw shape's record, and must not drop it
    saved = json.loads((out / "pipeline.json").read_text())
    assert saved["shape"]["result"] == "codes" and saved["base-0"]["result"] == "base"
    assert second.status["shape"]["result"] == "codes"  # and it now knows what the other recorded

    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_record_stages, args=(out, name, 40)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    saved = json.loads((out / "pipeline.json").read_text())
    assert {f"{name}-{i}" for name in ("a", "b") for i in range(40)} <= set(saved)
    assert all(saved[f"{name}-{i}"]["status"] == "done" for name in ("a", "b") for i in range(40))
