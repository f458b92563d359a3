"""What evaluation records per object beyond the outcomes: category, grasp distance D, the hyper-policy's mixing
weights, the JSON summary (old summaries still pair) and the GIFs of one success and one failure."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import resdex_sb3.run_evaluation as run_evaluation
from envs.factory import make_vec_env
from envs.objects.catalog import load_object_set
from envs.objects.primitives import primitive_objects
from envs.proposals import GraspProposal
from envs.render import RenderUnavailableError
from envs.rewards import PROPOSAL_WEIGHT
from envs.vec_env import ResDexVecEnv
from resdex_sb3.composer import ResidualMoEComposer
from resdex_sb3.evaluation import (EVAL_SEED, EpisodeOutcomes, mixing_composer, per_object, per_object_outcomes,
                                   run_episodes)  # fmt: skip
from resdex_sb3.policies import POLICY_ALIASES
from resdex_sb3.ray_evaluation import merge
from resdex_sb3.run_evaluation import (evaluate_run, evaluation_env, paired_metrics, result_json, split_objects,
                                       trial_seed)  # fmt: skip

EPISODE = 8  # control steps per episode in the small envs below
OBJECTS = primitive_objects()[:2]  # cube (box), box_long (box)
PROPOSALS = {OBJECTS[0].name: GraspProposal(np.array([0.0, 0.0, 0.08]), np.array([1.0, 0.0, 0.0, 0.0]), np.zeros(22))}
ACTION = (0.3 * np.sin(np.arange(24))).astype(np.float32)  # a fixed action that moves hand and fingers
EVALUATED = ["mug-000", "ball-000"]  # embedded-small train objects the run evaluations below keep


def _proposal_env(reward_mode: str):
    """Two objects x two trials; only the first object has a grasp proposal."""
    return make_vec_env("ResDexBase", 4, OBJECTS, seed=EVAL_SEED, num_threads=1, episode_length=EPISODE,
                        proposals=PROPOSALS, reward_mode=reward_mode)  # fmt: skip


def _episode_infos(env) -> list[dict]:
    """The done-infos of one episode of every env under the fixed action."""
    env.reset()
    for _ in range(EPISODE):
        _, _, dones, infos = env.step(np.tile(ACTION, (env.num_envs, 1)))
    assert dones.all()
    return infos


def test_grasp_distance_is_minus_the_summed_proposal_term_and_is_recorded_in_every_reward_mode():
    stage1 = _episode_infos(_proposal_env("stage1"))
    for info in stage1[:2]:  # the object with a proposal: D = -sum_t r_proposal = sum_t PROPOSAL_WEIGHT * delta_t
        assert info["grasp_distance"] > 0.0
        assert info["grasp_distance"] == pytest.approx(-info["reward_terms"]["proposal"], rel=1e-12)
    assert [info["grasp_distance"] for info in stage1[2:]] == [None, None]  # no proposal: no D
    # stage 2 has no proposal term, yet records the same D (same seeds and actions: the same episode)
    stage2_env = _proposal_env("stage2")
    stage2 = _episode_infos(stage2_env)
    assert "proposal" not in stage2[0]["reward_terms"]
    same_episode = [i["grasp_distance"] for i in stage1[:2]] + [None] * 2
    assert [i["grasp_distance"] for i in stage2] == pytest.approx(same_episode)
    # run_episodes carries it to the per-object mean: over the trials that have one, None in the JSON otherwise
    outcomes = run_episodes(stage2_env, lambda obs: np.tile(ACTION, (len(obs), 1)), EPISODE, seed=EVAL_SEED)
    np.testing.assert_allclose(outcomes.grasp_distance[:2], [i["grasp_distance"] for i in stage2[:2]])
    assert np.isnan(outcomes.grasp_distance[2:]).all()
    result = per_object_outcomes(stage2_env.get_attr("objects"), outcomes, 2)
    summary = result_json(result, "train", "run")
    assert summary["objects"][0]["grasp_distance"] == pytest.approx(np.mean(outcomes.grasp_distance[:2]))
    assert summary["objects"][1]["grasp_distance"] is None
    assert summary["grasp_distance"] == pytest.approx(summary["objects"][0]["grasp_distance"])
    assert PROPOSAL_WEIGHT == 0.5


def test_per_object_means_skip_missing_distances_and_weight_steps():
    outcomes = EpisodeOutcomes(np.array([1, 0, 0, 0], bool), np.ones(4, bool), np.zeros(4, bool),
                               grasp_distance=np.array([2.0, np.nan, np.nan, np.nan]),
                               weight_sums=np.array([[3.0, 1.0], [1.0, 1.0], [0.0, 4.0], [2.0, 2.0]]),
                               steps=np.array([4, 2, 4, 4]))  # fmt: skip
    result = per_object(["a", "a", "b", "b"], outcomes.sustained, outcomes.success, outcomes.held, 2,
                        categories=["x", "x", "y", "y"], grasp_distance=outcomes.grasp_distance,
                        weight_sums=outcomes.weight_sums, steps=outcomes.steps)  # fmt: skip
    assert result.categories == ["x", "y"]
    np.testing.assert_allclose(result.grasp_distance, [2.0, np.nan])  # mean over the trials that have one
    np.testing.assert_allclose(result.weights, [[4 / 6, 2 / 6], [2 / 8, 6 / 8]])  # over all steps of the trials
    np.testing.assert_array_equal(result.trial_sustained, [[True, False], [False, False]])
    assert result.mean_grasp_distance == 2.0 and result.mean_weights == pytest.approx([11 / 24, 13 / 24])
    bare = per_object(["a", "b"], np.zeros(2, bool), np.zeros(2, bool), np.zeros(2, bool), 1)
    assert bare.mean_grasp_distance is None and bare.mean_weights is None
    row = result_json(bare, "train", "run")["objects"][0]
    assert row["category"] is None and row["grasp_distance"] is None and row["weights"] is None


# ---------------------------------------------------------------------------------------------- saved runs
def _save_run(folder: Path, env_id: str, model: PPO, env: VecNormalize, env_kwargs: dict) -> Path:
    """An rl-zoo style run folder: ``<env id>.zip``, ``<env id>/vecnormalize.pkl`` and ``<env id>/config.yml``."""
    (folder / env_id).mkdir(parents=True)
    model.save(folder / f"{env_id}.zip")
    env.save(folder / env_id / "vecnormalize.pkl")
    (folder / env_id / "config.yml").write_text(yaml.safe_dump({"env_kwargs": env_kwargs}))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two untrained base runs and an untrained hyper run over them, on ``embedded-small`` (the default data)."""
    root = tmp_path_factory.mktemp("runs")
    kwargs = {"object_set": "embedded-small", "episode_length": EPISODE}
    made = {}
    for i in range(2):
        env = VecNormalize(make_vec_env("ResDexBase", 2, OBJECTS, seed=i, num_threads=1), norm_reward=False)
        model = PPO(POLICY_ALIASES["GeometryUnawarePolicy"], env, policy_kwargs={"net_arch": [16]}, seed=i,
                    device="cpu")  # fmt: skip
        made[f"base-{i}"] = _save_run(root / f"base-{i}", "ResDexBase-v0", model, env, kwargs)
    env = VecNormalize(ResidualMoEComposer(make_vec_env("ResDexHyper", 2, OBJECTS, num_threads=1),
                                           [made["base-0"], made["base-1"]]), norm_reward=False)  # fmt: skip
    model = PPO(POLICY_ALIASES["ResidualMoEPolicy"], env, policy_kwargs={"net_arch": [16]}, seed=0, device="cpu")
    hyper_kwargs = {**kwargs, "base_models": ["../base-0", "../base-1"], "reward_mode": "stage2"}
    made["hyper"] = _save_run(root / "hyper", "ResDexHyper-v0", model, env, hyper_kwargs)
    return made


def test_mixing_weights_are_the_mean_softmax_of_the_hyper_actions(runs):
    composer = ResidualMoEComposer(make_vec_env("ResDexHyper", 4, OBJECTS, seed=EVAL_SEED, num_threads=1,
                                                episode_length=EPISODE), [runs["base-0"], runs["base-1"]])  # fmt: skip
    env = VecNormalize(composer, norm_reward=False, training=False)
    assert mixing_composer(env) is composer and mixing_composer(composer) is composer
    rng, logits = np.random.default_rng(0), []

    def act(obs: np.ndarray) -> np.ndarray:
        hyper = rng.normal(0.0, 2.0, (len(obs), 26)).astype(np.float32)
        logits.append(hyper[:, :2])
        return hyper

    outcomes = run_episodes(env, act, EPISODE)
    result = per_object_outcomes(env.get_attr("objects"), outcomes, 2)
    softmax = np.exp(np.array(logits)) / np.exp(np.array(logits)).sum(axis=-1, keepdims=True)  # (steps, N, k)
    by_object = softmax.reshape(EPISODE, 2, 2, 2).mean(axis=(0, 2))  # steps and trials of each object
    np.testing.assert_allclose(result.weights, by_object, rtol=1e-5)
    np.testing.assert_allclose(result.weights.sum(axis=1), 1.0, rtol=1e-6)
    summary = result_json(result, "train", "hyper")
    assert len(summary["weights"]) == 2 and sum(summary["weights"]) == pytest.approx(1.0)
    assert all(len(row["weights"]) == 2 for row in summary["objects"])
    # a policy acting on the env itself (a base, a baseline, a vision student) has no weights
    plain = make_vec_env("ResDexBase", 2, OBJECTS, seed=0, num_threads=1, episode_length=EPISODE)
    assert mixing_composer(VecNormalize(plain)) is None
    plain_outcomes = run_episodes(plain, lambda obs: np.zeros((2, 24), np.float32), EPISODE)
    assert plain_outcomes.weight_sums is None
    assert result_json(per_object_outcomes(plain.get_attr("objects"), plain_outcomes, 1), "t", "r")["weights"] is None


def test_evaluate_run_records_category_and_weights_and_the_summary_round_trips(runs, tmp_path):
    objset = load_object_set("embedded-small")
    hyper = evaluate_run(runs["hyper"], "train", trials=2, only=EVALUATED)
    assert hyper.categories == [objset.by_name(name).category for name in hyper.objects]
    assert sorted(hyper.objects) == sorted(EVALUATED) and hyper.weights.shape == (2, 2)
    np.testing.assert_allclose(hyper.weights.sum(axis=1), 1.0, rtol=1e-6)
    summary = json.loads(json.dumps(result_json(hyper, "train", "hyper")))
    assert summary["grasp_distance"] is None  # the default data is built without grasp proposals
    assert sum(summary["weights"]) == pytest.approx(1.0)
    assert [set(row) for row in summary["objects"]] == [{"object", "category", "sustained", "success", "held",
                                                         "grasp_distance", "weights"}] * 2  # fmt: skip
    assert [row["category"] for row in summary["objects"]] == hyper.categories
    base = evaluate_run(runs["base-0"], "train", trials=2, only=EVALUATED)
    assert base.weights is None and result_json(base, "train", "base")["weights"] is None
    # sharded results merge with every per-object record; the merge is the whole evaluation's JSON
    shards = [evaluate_run(runs["hyper"], "train", 2, max_envs=2, only=EVALUATED, object_range=r)
              for r in ((0, 1), (1, 2))]  # fmt: skip
    merged = merge(shards)
    whole, joined = result_json(hyper, "train", "hyper"), result_json(merged, "train", "hyper")
    # the policy runs on batches of another size, so its softmax differs in the last float32 bits
    assert joined["weights"] == pytest.approx(whole["weights"], abs=1e-6)
    for row, reference in zip(joined["objects"], whole["objects"], strict=True):
        assert row.pop("weights") == pytest.approx(reference.pop("weights"), abs=1e-6)
    assert {**joined, "weights": None} == {**whole, "weights": None}
    np.testing.assert_array_equal(merged.trial_sustained, hyper.trial_sustained)


def test_evaluation_runs_the_policy_on_one_torch_thread_and_gives_the_callers_count_back(runs, monkeypatch):
    threads_while_stepping: list[int] = []
    original = run_evaluation.run_episodes

    def recording(*args, **kwargs):
        threads_while_stepping.append(torch.get_num_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(run_evaluation, "run_episodes", recording)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = evaluate_run(runs["base-0"], "train", trials=1, only=EVALUATED)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert threads_while_stepping == [1] and sorted(result.objects) == sorted(EVALUATED)


def test_paired_metrics_read_summaries_without_the_new_keys(tmp_path):
    new = per_object(["x", "y"], np.array([1, 0], bool), np.ones(2, bool), np.zeros(2, bool), 1,
                     categories=["c", "c"], grasp_distance=np.array([1.0, np.nan]))  # fmt: skip
    (tmp_path / "new.json").write_text(json.dumps(result_json(new, "train", "new")))
    old = {"model": "old", "split": "train", "trials": 1, "num_objects": 2, "sustained": 0.0, "success": 0.5,
           "held": 0.0, "objects": [{"object": "x", "sustained": 0.0, "success": 1.0, "held": 0.0},
                                    {"object": "y", "sustained": 0.0, "success": 0.0, "held": 0.0}]}  # fmt: skip
    (tmp_path / "old.json").write_text(json.dumps(old))
    count, paired = paired_metrics(tmp_path / "new.json", tmp_path / "old.json")
    assert count == 2 and paired["sustained"][:3] == (0.5, 0.0, 0.5)


# ---------------------------------------------------------------------------------------------- GIFs
def _start_state(env) -> np.ndarray:
    """Each env's first observation and simulator state after the reset (the base observation alone is in the
    start-yaw frame, blind to the random yaw)."""
    obs = env.reset()
    while hasattr(env, "venv"):
        env = env.venv
    return np.concatenate([obs, env.task.sim.qpos], axis=1)


def test_a_trial_rerun_alone_starts_where_it_started_in_its_batch(runs):
    run, set_name, objset, objects = split_objects(runs["base-0"], "train", only=EVALUATED)
    trials = 2
    batch = _start_state(evaluation_env(run, set_name, objset, objects, trials, EVAL_SEED))  # one chunk
    later_chunk = _start_state(evaluation_env(run, set_name, objset, objects[1:], trials, EVAL_SEED + 1 * trials))
    for index in range(len(objects)):
        for trial in range(trials):
            alone = _start_state(evaluation_env(run, set_name, objset, [objects[index]], 1,
                                                trial_seed(index, trial, trials)))  # fmt: skip
            np.testing.assert_array_equal(alone[0], batch[index * trials + trial])
            if index == 1:  # the seed does not depend on how the objects were chunked
                np.testing.assert_array_equal(alone[0], later_chunk[trial])
    assert not np.array_equal(batch[0], batch[1])  # the trials start from different poses


def _gif_frames(path: Path) -> tuple[int, tuple[int, int]]:
    with Image.open(path) as gif:
        return gif.n_frames, gif.size


def test_gifs_show_the_first_success_and_failure_and_say_how_their_reruns_ended(runs, tmp_path, monkeypatch):
    real = run_evaluation.run_episodes

    def first_object_second_trial_sustained(env, act, length, on_step=None, seed=None):
        outcomes = real(env, act, length, on_step, seed)
        if env.num_envs > 1:  # the evaluation, not a re-run: pretend trial 1 of the first object held the object
            outcomes.sustained[1] = True
        return outcomes

    monkeypatch.setattr(run_evaluation, "run_episodes", first_object_second_trial_sustained)
    folder = tmp_path / "gifs"
    result = evaluate_run(runs["base-0"], "train", trials=2, only=EVALUATED, gifs=folder)
    info = json.loads((folder / "gifs.json").read_text())
    assert info["rendering"] == "ok"
    first = result.objects[0]
    assert info["success"] == {"object": first, "category": result.categories[0], "trial": 1,
                               "seed": EVAL_SEED + 1, "evaluated_sustained": True, "rerun_sustained": False,
                               "rerun_matches": False, "file": "success.gif"}  # the mismatch is shown  # fmt: skip
    assert info["failure"]["object"] == first and info["failure"]["trial"] == 0
    assert info["failure"]["rerun_matches"] is True and info["failure"]["file"] == "failure.gif"
    for name in ("success.gif", "failure.gif"):
        frames, (width, height) = _gif_frames(folder / name)
        assert frames == len(range(0, EPISODE - 1, 2)) and width == 240 and height == 180


def test_gifs_skip_what_no_trial_shows_and_say_when_rendering_is_unavailable(runs, tmp_path, monkeypatch, capsys):
    from resdex_sb3.evaluate import main

    folder = tmp_path / "gifs"
    assert main(["--model", str(runs["base-1"]), "--split", "unseen_cat", "--trials", "1", "--gifs", str(folder),
                 "--json", str(tmp_path / "eval.json"), "--csv", str(tmp_path / "eval.csv")]) == 0  # fmt: skip
    info = json.loads((folder / "gifs.json").read_text())
    assert info["success"] == {"file": None, "skipped": "no trial was a sustained success"}  # untrained
    assert info["failure"]["file"] == "failure.gif" and (folder / "failure.gif").is_file()
    assert not (folder / "success.gif").exists()
    summary = json.loads((tmp_path / "eval.json").read_text())
    assert {"grasp_distance", "weights"} <= set(summary) and summary["objects"][0]["category"]
    with open(tmp_path / "eval.csv") as handle:
        assert next(csv.reader(handle)) == ["object", "category", "sustained", "success", "held", "grasp_distance"]

    def no_gl(self, env, camera="front"):
        raise RenderUnavailableError("no OpenGL here")

    monkeypatch.setattr(ResDexVecEnv, "render_env", no_gl)
    capsys.readouterr()
    evaluate_run(runs["base-1"], "train", trials=1, only=EVALUATED, gifs=folder)
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "no OpenGL here" in line]) == 1
    info = json.loads((folder / "gifs.json").read_text())
    assert info["rendering"] == "unavailable: no OpenGL here"
    assert info["failure"]["file"] is None and info["failure"]["rerun_sustained"] is None
    assert info["failure"]["object"] in EVALUATED and info["success"]["file"] is None
    assert not (folder / "failure.gif").exists()  # the earlier evaluation's GIF is not left as if it were this one's
