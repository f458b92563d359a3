"""The training CLI over rl-zoo, checkpoints and resume, the batched bootstrap, and evaluation."""

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

from callbacks.batched_timeout_bootstrap import BatchedTimeoutBootstrap
from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects
from resdex_sb3.evaluation import confidence_interval, per_object
from resdex_sb3.zoo_manager import DEFAULT_CONFIG, select_preset

REPO = Path(__file__).resolve().parents[1]


def _run(module: str, *args: str, data_dir: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RESDEX_DATA": str(data_dir)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def test_every_preset_reads_and_unknown_keys_are_named(tmp_path):
    for env_id in ("ResDexBase-v0", "ResDexHyper-v0"):
        for preset in ("smoke", "cpu", "paper"):
            params = select_preset(DEFAULT_CONFIG, env_id, preset)
            assert params["n_envs"] > 0 and params["gamma"] == 0.96
    paper = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", "paper")
    assert (paper["n_envs"], paper["n_steps"], paper["n_epochs"]) == (11000, 8, 5)
    assert paper["n_envs"] * paper["n_steps"] // paper["batch_size"] == 4
    for preset in ("smoke", "cpu", "paper"):  # the baseline differs from the method only in its policy
        method = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", preset)
        baseline = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", f"baseline-{preset}")
        assert baseline["policy"].endswith("MultiTaskPolicy") and method["policy"].endswith("ResidualMoEPolicy")
        same = ("n_envs", "n_timesteps", "n_steps", "batch_size", "n_epochs", "learning_rate", "env_kwargs")
        assert {k: baseline[k] for k in same} == {k: method[k] for k in same}
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["ResDexBase-v0"]["smoke"]["learning_rat"] = 1e-3
    bad = tmp_path / "ppo.yml"
    bad.write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="learning_rat"):
        select_preset(bad, "ResDexBase-v0", "smoke")
    with pytest.raises(ValueError, match="no 'huge' under ResDexBase-v0; known: .*smoke"):
        select_preset(DEFAULT_CONFIG, "ResDexBase-v0", "huge")


def test_batched_bootstrap_matches_sb3_loop():
    def rollout(callback):
        env = make_vec_env("ResDexBase", 8, primitive_objects(), seed=0, num_threads=1, episode_length=5)
        model = PPO("MlpPolicy", env, n_steps=12, batch_size=48, seed=3, policy_kwargs={"net_arch": [16]})
        model.learn(96, callback=callback)  # one rollout of 12 steps: two synchronized truncations
        return model.rollout_buffer.rewards.copy(), model.rollout_buffer.returns.copy()

    plain, batched = rollout(None), rollout(BatchedTimeoutBootstrap())
    np.testing.assert_allclose(batched[0], plain[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(batched[1], plain[1], rtol=1e-5, atol=1e-5)


class _FakeClock:
    """A clock that only moves when told to: the probes then time what the test says, not the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_update_threads_switches_around_the_update_and_keeps_the_faster_count():
    import torch as th
    from stable_baselines3.common.callbacks import BaseCallback

    from callbacks.update_threads import UpdateThreads

    class RolloutThreads(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.seen: set[int] = set()

        def _on_step(self) -> bool:
            self.seen.add(th.get_num_threads())
            return True

    def run(slow_threads: int | None, iterations: int, probe_every: int) -> tuple[list[int], set[int]]:
        clock = _FakeClock()
        callback = UpdateThreads(2, probe_every=probe_every, clock=clock)
        env = make_vec_env("ResDexBase", 4, primitive_objects(), seed=0, num_threads=1)
        model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu",
                    policy_kwargs=dict(net_arch=[16]))  # fmt: skip
        in_update: list[int] = []
        train = model.train

        def timed_train() -> None:
            in_update.append(th.get_num_threads())
            # only the update advances the clock: 10x longer with the slow count (a busy machine, as far as the
            # probe can tell), so the choice is decided by this and never by the real update time
            clock.now += 1.0 if th.get_num_threads() == slow_threads else 0.1
            train()

        model.train = timed_train
        rollout = RolloutThreads()
        model.learn(32 * iterations, callback=[callback, rollout])
        assert th.get_num_threads() == 1  # restored once training ends
        return in_update, rollout.seen

    previous = th.get_num_threads()
    th.set_num_threads(1)
    try:
        assert run(None, 2, probe_every=0) == ([2, 2], {1})
        # probes 1 then 2 threads, finds 2 slower, keeps 1 until the next probe; a fast 2 is kept
        assert run(2, 6, probe_every=4) == ([1, 2, 1, 1, 1, 2], {1})
        assert run(1, 4, probe_every=4)[0] == [1, 2, 2, 2]
    finally:
        th.set_num_threads(previous)
    with pytest.raises(ValueError, match="update_threads"):
        UpdateThreads(-1)
    with pytest.raises(ValueError, match="probe_every"):
        UpdateThreads(2, probe_every=-1)


def test_update_threads_probe_ignores_the_time_between_learn_calls():
    import torch as th

    from callbacks.update_threads import UpdateThreads

    clock = _FakeClock()
    callback = UpdateThreads(2, probe_every=4, clock=clock)
    env = make_vec_env("ResDexBase", 4, primitive_objects(), seed=0, num_threads=1)
    model = PPO("MlpPolicy", env, n_steps=8, batch_size=16, n_epochs=1, seed=0, device="cpu",
                policy_kwargs=dict(net_arch=[16]))  # fmt: skip
    in_update: list[int] = []
    train = model.train

    def timed_train() -> None:  # 2 threads 10x slower
        in_update.append(th.get_num_threads())
        clock.now += 1.0 if th.get_num_threads() == 2 else 0.1
        train()

    model.train = timed_train
    previous = th.get_num_threads()
    th.set_num_threads(1)
    try:
        model.learn(32, callback=callback)  # a warm-up call: its update's probe is never finished
        clock.now += 100.0  # e.g. a slow setup of the next call
        model.learn(96, callback=callback, reset_num_timesteps=False)
    finally:
        th.set_num_threads(previous)
    # the second call probes 1 then 2 threads afresh and keeps the faster 1
    assert in_update == [1, 1, 2, 1]


def test_confidence_interval_and_per_object_means():
    low, high = confidence_interval(np.array([0.0, 1.0, 1.0, 1.0]))
    assert 0.0 <= low < 0.75 < high <= 1.0
    result = per_object(["a", "a", "b", "b"], np.array([0, 0, 1, 0], bool), np.array([1, 0, 1, 1], bool),
                        np.array([0, 0, 1, 0], bool), 2)  # fmt: skip
    assert result.objects == ["a", "b"]
    np.testing.assert_allclose(result.sustained, [0.0, 0.5])
    np.testing.assert_allclose(result.success, [0.5, 1.0])
    np.testing.assert_allclose(result.held, [0.0, 0.5])


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    data = tmp_path_factory.mktemp("data")
    from envs.objects.build import build_embedded
    from envs.objects.store import ObjectStore

    build_embedded(ObjectStore(data), "small", proposals=False)
    return data


def test_train_smoke_writes_a_self_describing_run_and_resumes(tmp_path, small_data):
    run = tmp_path / "base"
    args = ["--algo", "ppo", "--env", "ResDexBase", "--preset", "smoke", "--run-dir", str(run), "--seed", "1",
            "-tb", str(run / "tb"), "--save-freq", "128"]  # fmt: skip
    done = _run("resdex_sb3.train", *args, data_dir=small_data)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("ResDexBase-v0.zip", "checkpoint.zip", "checkpoint.json", "ResDexBase-v0/config.yml",
                 "ResDexBase-v0/vecnormalize.pkl", "ResDexBase-v0/command.txt"):  # fmt: skip
        assert (run / name).exists(), name
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    steps = json.loads((run / "checkpoint.json").read_text())["num_timesteps"]
    assert steps >= 512
    # continue from the checkpoint: the step count carries on
    more = _run("resdex_sb3.train", *args, "-i", str(run / "checkpoint.zip"), "-n", "256", data_dir=small_data)
    assert more.returncode == 0, more.stderr[-3000:]
    assert json.loads((run / "checkpoint.json").read_text())["num_timesteps"] >= steps + 256
    commands = (run / "ResDexBase-v0" / "command.txt").read_text().splitlines()
    assert len(commands) == 2 and "-i" not in commands[0].split() and commands[1].endswith("-n 256")  # both kept
    # saved and reloaded policies act the same
    model = PPO.load(run / "ResDexBase-v0.zip", device="cpu")
    obs = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    again = PPO.load(run / "ResDexBase-v0.zip", device="cpu")
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], again.predict(obs, deterministic=True)[0])
    # evaluation of the run on a split writes the documented JSON
    out = tmp_path / "eval.json"
    evaluated = _run("resdex_sb3.evaluate", "--model", str(run), "--split", "unseen_cat", "--trials", "1",
                     "--json", str(out), data_dir=small_data)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    summary = json.loads(out.read_text())
    assert {"split", "sustained", "sustained_ci95", "success", "ci95", "held", "held_ci95", "objects"} <= set(summary)
    assert summary["split"] == "unseen_cat" and 0.0 <= summary["success"] <= 1.0
    assert len(summary["objects"]) == 10


def test_train_rejects_unknown_env_option(tmp_path, small_data):
    done = _run("resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase", "--preset", "smoke", "--run-dir",
                str(tmp_path / "r"), "--env-kwargs", "colour:'red'", data_dir=small_data)  # fmt: skip
    assert done.returncode != 0
    assert "colour" in done.stderr


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path):
    from resdex_sb3.train import run_lock

    with run_lock(tmp_path / "run"):
        blocked = subprocess.run([sys.executable, "-c", "from pathlib import Path; from resdex_sb3.train import "
                                  f"run_lock; run_lock(Path({str(tmp_path / 'run')!r})).__enter__()"],
                                 cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert blocked.returncode != 0 and "being trained by another process" in blocked.stderr
    with run_lock(tmp_path / "run"):  # released with the first holder
        pass
