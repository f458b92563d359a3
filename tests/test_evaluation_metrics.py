"""The evaluation protocol's metrics and intervals, the periodic evaluation's best checkpoint and gate, and how
saved runs are read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import callbacks.split_success_eval as split_eval
from callbacks.split_success_eval import SplitSuccessEval
from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects
from envs.objects.spec import ConvexPart, ObjectSpec
from resdex_sb3.evaluate import compare
from resdex_sb3.run_evaluation import result_json
from resdex_sb3.evaluation import (EVAL_SEED, EpisodeOutcomes, confidence_interval, paired_difference, per_object,
                                   run_episodes, spread_over_categories)
from resdex_sb3.run_folder import GATE_FILE, load_run, model_and_stats
from resdex_sb3.zoo_manager import DEFAULT_CONFIG

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "ResDexBase-v0"
EPISODE = 8  # control steps per episode in the small envs below


def test_wilson_interval_keeps_its_width_when_every_object_fails_or_succeeds():
    for n in (1, 10, 100):
        low, high = confidence_interval(np.zeros(n))
        assert low == pytest.approx(0.0) and 0.0 < high < 1.0
        low, high = confidence_interval(np.ones(n))
        assert 0.0 < low < 1.0 and high == pytest.approx(1.0)
    # the z^2 / (n + z^2) upper bound of an all-zero split, and more objects give a narrower interval
    assert confidence_interval(np.zeros(10))[1] == pytest.approx(1.96**2 / (10 + 1.96**2), rel=1e-3)
    assert confidence_interval(np.zeros(100))[1] < confidence_interval(np.zeros(10))[1]
    low, high = confidence_interval(np.array([0.0, 0.5, 1.0, 0.5]))
    assert low < 0.5 < high
    assert all(np.isnan(confidence_interval(np.zeros(0))))


def test_paired_difference_of_known_arrays():
    a, b = np.array([1.0, 0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0, 0.0])
    mean, low, high = paired_difference(a, b)
    half = 3.182446 * np.std([0.5, 0.0, 0.5, 0.0], ddof=1) / 2  # t(0.975, 3 dof) * sd / sqrt(4)
    assert (mean, low, high) == pytest.approx((0.25, 0.25 - half, 0.25 + half), abs=1e-5)
    assert paired_difference(b, a) == pytest.approx((-0.25, -0.25 - half, -0.25 + half), abs=1e-5)
    assert paired_difference(np.array([0.75]), np.array([0.25])) == (0.5, -1.0, 1.0)  # one object: no spread
    assert paired_difference(a, a) == (0.0, 0.0, 0.0)
    # an unbounded quantity (the grasp distance D, ~70 per episode) keeps its whole interval
    distances = np.array([60.0, 70.0, 75.0, 80.0])
    mean, low, high = paired_difference(distances, distances + [4.0, 6.0, 5.0, 5.0], bounds=None)
    spread = 3.182446 * np.std([4.0, 6.0, 5.0, 5.0], ddof=1) / 2
    assert (mean, low, high) == pytest.approx((-5.0, -5.0 - spread, -5.0 + spread), abs=1e-5) and low < -1.0
    assert paired_difference(np.array([70.0]), np.array([60.0]), bounds=None) == (10.0, -np.inf, np.inf)
    with pytest.raises(ValueError, match="shape"):
        paired_difference(a, b[:3])
    with pytest.raises(ValueError, match="at least one"):
        paired_difference(np.zeros(0), np.zeros(0))


def test_sustained_success_tells_a_fly_through_and_a_drop_from_a_hold():
    """Teleport the object (its sensed position) into and out of the goal sphere on a schedule per env."""
    env = make_vec_env(ENV_ID, 4, primitive_objects()[:1], seed=0, num_threads=1, episode_length=30)
    task = env.task
    inside = np.zeros((4, 31), dtype=bool)  # [env, progress]: the step count when the position is read
    inside[0, 10:13] = True  # flies through: 3 steps in the sphere
    inside[1, 5:17] = True  # 12 steps in the sphere, then dropped
    inside[2, 26:31] = True  # arrives late: 5 steps, there at the end
    inside[3, 15:31] = True  # lifted and held for the last 16 steps
    away = task.goal + np.array([0.0, 0.0, -0.3])
    task._object_pos = lambda: np.where(inside[np.arange(4), task.progress][:, None], task.goal, away)
    outcomes = run_episodes(env, lambda obs: np.zeros((4, 24), np.float32), 30)
    sustained, success, held = outcomes.sustained, outcomes.success, outcomes.held
    np.testing.assert_array_equal(success, [True, True, True, True])
    np.testing.assert_array_equal(sustained, [False, True, False, True])
    np.testing.assert_array_equal(held, [False, False, True, True])
    with pytest.raises(ValueError, match="random_initial_progress"):
        desynchronised = make_vec_env(ENV_ID, 2, primitive_objects()[:1], num_threads=1, random_initial_progress=True)
        run_episodes(desynchronised, lambda obs: np.zeros((2, 24), np.float32), 30)


def test_capped_evaluation_spreads_over_every_category():
    def obj(name: str, category: str) -> ObjectSpec:
        return ObjectSpec(name, (ConvexPart("sphere", (0.03,)),), category=category)

    objects = [obj(f"mug-{i}", "mug") for i in range(5)] + [obj("can-0", "can")]
    objects += [obj(f"bowl-{i}", "bowl") for i in range(3)]
    names = [o.name for o in spread_over_categories(objects, 3)]
    assert names == ["mug-0", "can-0", "bowl-0"]  # the first three would all be mugs
    # round 2 takes bowl-2 before mug-2: categories go in name order; the result keeps the given order
    assert [o.name for o in spread_over_categories(objects, 6)] == ["mug-0", "mug-1", "can-0", "bowl-0", "bowl-1",
                                                                    "bowl-2"]  # fmt: skip
    assert spread_over_categories(objects, 100) == objects
    assert {o.category for o in spread_over_categories(list(reversed(objects)), 3)} == {"mug", "can", "bowl"}


def _small_model(seed: int = 0) -> PPO:
    env = VecNormalize(make_vec_env(ENV_ID, 4, primitive_objects()[:2], seed=seed, num_threads=1,
                                    episode_length=EPISODE), norm_reward=False)  # fmt: skip
    return PPO("MlpPolicy", env, n_steps=8, batch_size=32, n_epochs=1, seed=seed, device="cpu",
               policy_kwargs={"net_arch": [16]})  # fmt: skip


def _make_eval_env(split: str, trials: int, max_objects: int):
    objects = spread_over_categories(primitive_objects(), max_objects)
    return make_vec_env(ENV_ID, len(objects) * trials, objects, seed=EVAL_SEED, num_threads=1, episode_length=EPISODE)


def _evaluator(run_dir: Path, **kwargs) -> SplitSuccessEval:
    callback = SplitSuccessEval(eval_freq=32, splits=("train",), trials=2, max_objects=2, run_dir=run_dir,
                                env_id=ENV_ID, **kwargs)  # fmt: skip
    callback.make_env = _make_eval_env
    return callback


def test_best_checkpoint_only_on_improvement_and_kept_across_a_resume(tmp_path, monkeypatch):
    scripted: list[float] = []  # mean sustained success of each coming evaluation (2 objects x 2 trials)

    def fake_episodes(env, act, length, on_step=None, seed=None):
        share = scripted.pop(0)
        sustained = np.arange(env.num_envs) < round(share * env.num_envs)
        return EpisodeOutcomes(sustained, sustained | True, sustained)

    monkeypatch.setattr(split_eval, "run_episodes", fake_episodes)
    best = tmp_path / "best" / "best.json"
    model = _small_model()
    # each learn() is one rollout of 32 steps with a new callback, as a run continued with -i gets
    for share, reset, expected in ((0.5, True, (32, 0.5)), (0.25, False, (32, 0.5)), (0.75, False, (96, 0.75))):
        scripted.append(share)
        callback = _evaluator(tmp_path)
        model.learn(32, callback=callback, reset_num_timesteps=reset)
        assert not scripted, "one evaluation per rollout"
        info = json.loads(best.read_text())
        assert (info["num_timesteps"], info["sustained"]) == expected
        assert info["metric"] == "sustained" and info["split"] == "train" and info["success"] == 1.0
    assert (tmp_path / "best" / "best_model.zip").is_file()
    stats = VecNormalize.load(str(tmp_path / "best" / ENV_ID / "vecnormalize.pkl"), _make_eval_env("train", 1, 2))
    np.testing.assert_allclose(stats.obs_rms.mean, model.get_vec_normalize_env().obs_rms.mean)
    # a fresh run in the same folder forgets the old best: its first evaluation is the best, however low
    scripted.append(0.25)
    model.learn(32, callback=_evaluator(tmp_path), reset_num_timesteps=True)
    assert (json.loads(best.read_text())["num_timesteps"], json.loads(best.read_text())["sustained"]) == (32, 0.25)
    # training that ends over eval_freq / 2 after the last evaluation evaluates once more
    scripted += [0.0, 0.0]
    callback = _evaluator(tmp_path)
    callback.eval_freq = 40
    model.learn(64, callback=callback, reset_num_timesteps=True)
    assert not scripted and callback._last == 64


def test_stop_at_gate_ends_training_and_writes_gate_json(tmp_path):
    model = _small_model()
    callback = _evaluator(tmp_path, stop_at={"success": 0.0, "held": 0.0})
    model.learn(320, callback=callback)
    assert model.num_timesteps == 32 and callback.passed  # stopped at the first evaluation
    gate = json.loads((tmp_path / GATE_FILE).read_text())
    assert gate["passed"] is True and gate["num_timesteps"] == 32 and gate["stop_at"] == {"success": 0.0, "held": 0.0}
    assert {"sustained", "success", "held"} <= set(gate)
    logged = model.logger.name_to_value
    assert {"eval/sustained_train", "eval/success_train", "eval/held_train"} <= set(logged)
    with pytest.raises(ValueError, match="unknown metric"):
        SplitSuccessEval(32, stop_at={"lifted": 0.5})


def _fake_run(root: Path, best: bool) -> Path:
    (root / ENV_ID).mkdir(parents=True)
    (root / ENV_ID / "config.yml").write_text(yaml.safe_dump({"env_kwargs": {"objects": ["cube"]}}))
    for name in (f"{ENV_ID}.zip", f"{ENV_ID}/vecnormalize.pkl", "best/best_model.zip",
                 f"best/{ENV_ID}/vecnormalize.pkl"):  # fmt: skip
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    if best:
        (root / "best" / "best.json").write_text(json.dumps({"num_timesteps": 640, "metric": "sustained"}))
    return root


def test_load_run_and_the_composer_prefer_the_best_checkpoint(tmp_path):
    run = load_run(_fake_run(tmp_path / "with", best=True))
    assert run.model_path == tmp_path / "with" / "best" / "best_model.zip"
    assert run.stats_path == tmp_path / "with" / "best" / ENV_ID / "vecnormalize.pkl"
    assert run.best_timesteps == 640 and run.env_kwargs == {"objects": ["cube"]}
    assert model_and_stats(tmp_path / "with") == (run.model_path, run.stats_path)  # the composer's reader
    explicit = load_run(tmp_path / "with" / f"{ENV_ID}.zip")  # a named zip is that zip, with its own stats
    assert explicit.model_path.name == f"{ENV_ID}.zip" and explicit.best_timesteps is None
    assert explicit.stats_path == tmp_path / "with" / ENV_ID / "vecnormalize.pkl"
    named_best = load_run(tmp_path / "with" / "best" / "best_model.zip")
    assert named_best.root == tmp_path / "with" and named_best.best_timesteps == 640
    assert named_best.stats_path == run.stats_path
    without = load_run(_fake_run(tmp_path / "without", best=False))  # no best.json: best/ is not complete
    assert without.model_path == tmp_path / "without" / f"{ENV_ID}.zip" and without.best_timesteps is None
    assert without.stats_path == tmp_path / "without" / ENV_ID / "vecnormalize.pkl"


def test_compare_pairs_objects_of_two_summaries(tmp_path, capsys):
    from resdex_sb3.evaluate import main

    def summary(path: Path, names: list[str], sustained: list[float]) -> Path:
        n = len(names)
        result = per_object(names, np.array(sustained) > 0.5, np.ones(n, bool), np.array(sustained) > 0.5, 1)
        path.write_text(json.dumps(result_json(result, "train", path.stem)))
        return path

    a = summary(tmp_path / "a.json", ["x", "y", "z"], [1.0, 1.0, 0.0])
    b = summary(tmp_path / "b.json", ["z", "y", "x"], [0.0, 0.0, 0.0])  # another order: paired by name
    lines = compare(a, b)
    assert "sustained" in lines[3] and "A-B  +66.7 points" in lines[3] and "A-B   +0.0" in lines[4]
    assert main(["--compare", str(a), str(b)]) == 0 and "any-time" in capsys.readouterr().out
    other = summary(tmp_path / "other.json", ["x", "y", "w"], [0.0, 0.0, 0.0])
    assert main(["--compare", str(a), str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other.json" in err and "other objects" in err


def test_training_run_evaluates_its_own_object_keeps_its_best_and_stops_at_its_gate(tmp_path):
    """End to end through rl-zoo: the experiment manager gives the callback the run folder; the ``own`` split is
    the run's one object; evaluation runs whole episodes although training desynchronises them."""
    data = tmp_path / "data"
    from envs.objects.build import build_embedded
    from envs.objects.store import ObjectStore

    build_embedded(ObjectStore(data), "small", proposals=False)
    smoke = yaml.safe_load(DEFAULT_CONFIG.read_text())[ENV_ID]["smoke"]
    smoke["env_kwargs"] = {**smoke["env_kwargs"], "random_initial_progress": True, "episode_length": EPISODE}
    smoke["callback"] = [{"callbacks.SplitSuccessEval": {"eval_freq": 64, "splits": ["own", "unseen_cat"],
                                                          "trials": 2, "max_objects": 3, "stop_at": {"held": 0.0}}}]
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"smoke": smoke}}))
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase",
                           "--preset", "smoke", "--run-dir", str(run), "-conf", str(config), "--seed", "0",
                           "--env-kwargs", "objects:['ball-000']"],
                          cwd=REPO, env={**os.environ, "RESDEX_DATA": str(data)}, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    gate = json.loads((run / GATE_FILE).read_text())
    assert gate["passed"] and gate["split"] == "own" and gate["num_timesteps"] < 512
    best = json.loads((run / "best" / "best.json").read_text())
    assert best["split"] == "own" and best["num_timesteps"] == gate["num_timesteps"]
    saved = load_run(run)
    # --env-kwargs overrides the preset's env_kwargs key by key (rl-zoo alone would replace them whole)
    assert saved.env_kwargs["objects"] == ["ball-000"] and saved.env_kwargs["random_initial_progress"] is True
    assert saved.env_kwargs["episode_length"] == EPISODE
    assert saved.model_path == run / "best" / "best_model.zip" and saved.best_timesteps == best["num_timesteps"]
    assert saved.stats_path == run / "best" / ENV_ID / "vecnormalize.pkl"


def test_ties_in_sustained_go_to_held_and_the_gate_checkpoint_is_always_kept(tmp_path, monkeypatch):
    scripted: list[tuple[float, float]] = []  # (sustained, held) means of each coming evaluation

    def fake_episodes(env, act, length, on_step=None, seed=None):
        sustained_share, held_share = scripted.pop(0)
        ids = np.arange(env.num_envs)
        sustained, held = ids < round(sustained_share * env.num_envs), ids < round(held_share * env.num_envs)
        return EpisodeOutcomes(sustained, sustained, held)

    monkeypatch.setattr(split_eval, "run_episodes", fake_episodes)
    model = _small_model()
    best = tmp_path / "best" / "best.json"
    # equal sustained success, more held: the later checkpoint is better (a mug base held 0 % then 80 % at 100 %)
    scripted += [(1.0, 0.0), (1.0, 0.75)]
    model.learn(64, callback=_evaluator(tmp_path))
    assert (json.loads(best.read_text())["num_timesteps"], json.loads(best.read_text())["held"]) == (64, 0.75)
    # the evaluation that passes the gate ends the run, so it is kept even when it ranks lower than the best
    scripted += [(1.0, 1.0)]
    model.learn(64, callback=_evaluator(tmp_path, stop_at={"held": 0.5}), reset_num_timesteps=True)
    assert not scripted and json.loads(best.read_text())["num_timesteps"] == 32  # passed at once: it stopped
    scripted += [(0.5, 0.5)]
    callback = _evaluator(tmp_path, stop_at={"held": 0.5})
    callback.best_rank = (1.0, 1.0, 1.0)  # a better best from before
    model.learn(64, callback=callback, reset_num_timesteps=False)
    info = json.loads(best.read_text())
    assert callback.passed and (info["sustained"], info["held"]) == (0.5, 0.5)
