"""The two hyper-policy variants of the ablation grid: the mixture without residual ("MoE, weights only": env
option ``residual: false``, policy ``residual_dim=0``, ``ppo.yml``'s ``moe-*`` presets) and the hyper-policy
trained with sb3-contrib's TRPO (``--algo trpo``, ``zoo_configs/trpo.yml``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
import yaml
from sb3_contrib import TRPO
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects
from resdex_sb3.composer import ResidualMoEComposer
from resdex_sb3.env_builder import build_env
from resdex_sb3.policies import POLICY_ALIASES, ResidualMoEPolicy
from resdex_sb3.presets import ZOO_CONFIGS
from resdex_sb3.run_evaluation import evaluate_run, load_model
from resdex_sb3.run_folder import load_run, model_steps
from resdex_sb3.zoo_manager import DEFAULT_CONFIG, default_config_path, select_preset

REPO = Path(__file__).resolve().parents[1]
N_ENVS = 8
SMALL = dict(net_arch=[16])


class ResDexPPO(PPO):
    policy_aliases = {**PPO.policy_aliases, **POLICY_ALIASES}


def _constant_lr(_: float) -> float:
    return 3e-4


def _hyper_env(n_envs: int = N_ENVS):
    return make_vec_env("ResDexHyper", n_envs, primitive_objects(), seed=0, num_threads=1)


@pytest.fixture(scope="module")
def bases(tmp_path_factory) -> list[Path]:
    """Two tiny trained bases, each a folder with its model zip and its ``vecnormalize.pkl``."""
    folders = []
    for seed in (0, 1):
        folder = tmp_path_factory.mktemp(f"base{seed}")
        env = VecNormalize(make_vec_env("ResDexBase", N_ENVS, primitive_objects(), seed=seed, num_threads=1),
                           norm_reward=False, clip_obs=5.0)  # fmt: skip
        model = ResDexPPO("GeometryUnawarePolicy", env, policy_kwargs=SMALL, n_steps=8, batch_size=32, n_epochs=1,
                          seed=seed, device="cpu")  # fmt: skip
        model.learn(64)
        model.save(folder / "model.zip")
        env.save(str(folder / "vecnormalize.pkl"))
        env.close()
        folders.append(folder)
    return folders


def _train(run: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "resdex_sb3.train", "--env", "ResDexHyper", "--run-dir", str(run),
                           "--seed", "0", *args], cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip


def _base_kwargs(bases: list[Path]) -> list[str]:
    return ["--env-kwargs", f"base_models:{[str(b) for b in bases]!r}"]


def _train_objects(saved, count: int) -> list[str]:
    """The first ``count`` training objects of a run (a short evaluation)."""
    from envs.objects.catalog import load_object_set

    return [o.name for o in load_object_set(saved.env_kwargs["object_set"]).split("train")[:count]]


def _assert_expert_composes(saved, algo_class) -> None:
    """The DAgger expert built from the run (``PrivilegedExpertPolicy.from_run``, as ``resdex_sb3.distill`` does)
    sends the run's own composition of its hyper-policy's action."""
    from envs.vision import PRIVILEGED
    from resdex_sb3.dagger import PrivilegedExpertPolicy

    env = make_vec_env("ResDexVision", 3, primitive_objects(), seed=1, num_threads=1)
    expert = PrivilegedExpertPolicy.from_run(saved.root, env)
    obs = env.reset()
    raw = obs[:, PRIVILEGED]
    hyper = algo_class.load(saved.model_path, device="cpu")
    stats = VecNormalize.load(str(saved.stats_path), _hyper_env(3))
    composer = build_env("ResDexHyper-v0", 3, 0, saved.env_kwargs, root=saved.root)
    want = composer.compose(raw, hyper.predict(stats.normalize_obs(raw), deterministic=True)[0])
    np.testing.assert_allclose(expert.predict(obs, deterministic=True)[0], want, atol=1e-5)
    for opened in (env, composer, stats):
        opened.close()


# ---------------------------------------------------------------------------------------------- weights only
def test_weights_only_composer_sends_the_clipped_mixture_of_the_bases(bases):
    composer = ResidualMoEComposer(_hyper_env(), bases, residual=False)
    assert composer.action_space.shape == (2,) and not composer.residual
    np.testing.assert_array_equal(composer.action_space.high, [10.0, 10.0])
    obs = composer.reset()
    logits = np.random.default_rng(0).normal(0, 3, (N_ENVS, 2)).astype(np.float32)
    base_actions = composer.base_actions(obs).numpy()  # (N, k, 24)
    weights = th.softmax(th.as_tensor(logits), dim=-1).numpy()
    expected = np.clip((weights[:, :, None] * base_actions).sum(axis=1), -1, 1)
    np.testing.assert_allclose(composer.compose(obs, logits), expected, rtol=1e-5, atol=1e-6)
    composer.step(logits)
    np.testing.assert_allclose(composer.last_weights, weights, rtol=1e-5)
    assert composer.last_residual.shape == (N_ENVS, 0)  # no residual dims at all
    # a residual-shaped action is refused, naming the layout
    with pytest.raises(ValueError, match=r"\(N, 2\) \(2 logits, no residual\)"):
        composer.compose(obs, np.zeros((N_ENVS, 2 + 24), np.float32))
    with_residual = ResidualMoEComposer(_hyper_env(), bases)
    assert with_residual.action_space.shape == (2 + 24,)
    # with a zero residual both composers agree
    np.testing.assert_allclose(with_residual.compose(obs, np.concatenate([logits, np.zeros((N_ENVS, 24))], axis=1)),
                               expected, rtol=1e-5, atol=1e-6)  # fmt: skip
    composer.close()
    with_residual.close()


def test_the_residual_env_option_needs_bases_and_a_boolean(bases):
    with pytest.raises(ValueError, match="env option residual needs base_models") as err:
        build_env("ResDexHyper-v0", 2, 0, {"object_set": "embedded-small", "residual": False})
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="residual must be true or false"):
        build_env("ResDexHyper-v0", 2, 0, {"base_models": [str(b) for b in bases], "residual": "no"})
    env = build_env("ResDexHyper-v0", 2, 0, {"object_set": "embedded-small", "base_models": [str(b) for b in bases],
                                             "residual": False})  # fmt: skip
    assert isinstance(env, ResidualMoEComposer) and env.action_space.shape == (2,)
    env.close()


def test_the_policy_takes_residual_dim_0_and_refuses_layouts_that_do_not_fit(tmp_path, bases):
    composer = ResidualMoEComposer(_hyper_env(), bases, residual=False)
    obs_space, weights_only = composer.observation_space, composer.action_space
    for extra in ({}, {"residual_log_std_init": -1.2}):  # no residual dims: its std has nothing to set
        policy = ResidualMoEPolicy(obs_space, weights_only, _constant_lr, residual_dim=0, **SMALL, **extra)
        assert policy.num_bases == 2 and policy.residual_dim == 0
        np.testing.assert_allclose(policy.log_std.detach().numpy(), np.log(0.8), rtol=1e-6)
        policy.save(tmp_path / "policy.zip")
        loaded = ResidualMoEPolicy.load(tmp_path / "policy.zip", device="cpu")
        assert (loaded.residual_dim, loaded.num_bases, loaded.residual_log_std_init) == (0, 2, extra.get(
            "residual_log_std_init"))  # fmt: skip
        obs = np.random.default_rng(1).normal(size=(4, obs_space.shape[0])).astype(np.float32)
        np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0],
                                      loaded.predict(obs, deterministic=True)[0])  # fmt: skip
    # the default residual width on a weights-only composer leaves no logits
    with pytest.raises(ValueError, match="no mixing logits.*residual_dim=0"):
        ResidualMoEPolicy(obs_space, weights_only, _constant_lr, **SMALL)
    # residual_dim=0 on a composer with a residual reads residual dims as logits: their bounds differ
    with_residual = ResidualMoEComposer(_hyper_env(), bases)
    with pytest.raises(ValueError, match="do not share one bound.*residual_dim=24"):
        ResidualMoEPolicy(obs_space, with_residual.action_space, _constant_lr, residual_dim=0, **SMALL)
    with pytest.raises(ValueError, match="whole number >= 0"):
        ResidualMoEPolicy(obs_space, weights_only, _constant_lr, residual_dim=-1, **SMALL)
    # a stock Box (no composer bounds) still works with any width that leaves logits
    ResidualMoEPolicy(obs_space, gym.spaces.Box(-1, 1, (4 + 24,), np.float32), _constant_lr, **SMALL)
    composer.close()
    with_residual.close()


def test_moe_presets_are_the_method_without_residual():
    for size in ("smoke", "cpu"):
        method = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", size)
        moe = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", f"moe-{size}")
        assert moe["env_kwargs"] == {**method["env_kwargs"], "residual": False}
        assert "residual_dim=0" in moe["policy_kwargs"]
        assert {k: v for k, v in moe.items() if k not in ("env_kwargs", "policy_kwargs")} == \
            {k: v for k, v in method.items() if k not in ("env_kwargs", "policy_kwargs")}  # fmt: skip


def test_moe_smoke_trains_a_weights_only_policy_that_evaluates(tmp_path, bases):
    run = tmp_path / "moe"
    done = _train(run, "--algo", "ppo", "--preset", "moe-smoke", "-n", "256", "--save-freq", "128",
                  *_base_kwargs(bases))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    model = PPO.load(run / "ResDexHyper-v0.zip", device="cpu")
    assert model.policy.residual_dim == 0 and model.action_space.shape == (2,)
    saved = load_run(run)
    assert saved.env_kwargs["residual"] is False and saved.algo == "ppo"
    result = evaluate_run(run, "train", trials=1, only=_train_objects(saved, 2))
    assert len(result.objects) == 2 and 0.0 <= result.mean_success <= 1.0
    _assert_expert_composes(saved, PPO)  # a weights-only hyper-policy is distillable


# ---------------------------------------------------------------------------------------------- TRPO
def test_the_default_config_is_the_algorithms_own(monkeypatch):
    from resdex_sb3.train import _with_defaults

    monkeypatch.delenv("RESDEX_ZOO_CONFIG", raising=False)
    argv = _with_defaults(["--algo", "trpo", "--env", "ResDexHyper"])
    assert argv[argv.index("-conf") + 1] == str(ZOO_CONFIGS / "trpo.yml")
    assert default_config_path() == str(ZOO_CONFIGS / "ppo.yml")
    monkeypatch.setenv("RESDEX_ZOO_CONFIG", "/elsewhere.yml")
    assert default_config_path("trpo") == "/elsewhere.yml"
    for size in ("smoke", "cpu"):  # the hyper preset's settings, TRPO's update
        trpo = select_preset(ZOO_CONFIGS / "trpo.yml", "ResDexHyper-v0", size, "trpo")
        ppo = select_preset(DEFAULT_CONFIG, "ResDexHyper-v0", size)
        same = ("policy", "n_envs", "n_timesteps", "n_steps", "gamma", "gae_lambda", "normalize", "policy_kwargs",
                "env_kwargs")  # fmt: skip
        assert {k: trpo[k] for k in same} == {k: ppo[k] for k in same}
        assert trpo["target_kl"] == 0.016 and trpo["batch_size"] == trpo["n_envs"] * trpo["n_steps"] // 4
        assert [c for c in ppo["callback"] if c != "callbacks.KLAdaptiveLR"] == trpo["callback"]


def test_trpo_smoke_trains_resumes_and_evaluates_as_trpo(tmp_path, bases, capsys):
    run = tmp_path / "trpo"
    first = _train(run, "--algo", "trpo", "--preset", "smoke", "-n", "128", "--save-freq", "128",
                   *_base_kwargs(bases))  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    assert model_steps(run / "checkpoint.zip") == 128
    (run / "ResDexHyper-v0.zip").unlink()  # killed after its checkpoint
    resumed = _train(run, "--algo", "trpo", "--preset", "smoke", "-n", "256", "--save-freq", "128", "--resume",
                     *_base_kwargs(bases))  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "at 128 of 256 steps: 128 more" in resumed.stdout
    assert model_steps(run / "ResDexHyper-v0.zip") == 256
    saved = load_run(run)
    assert saved.algo == "trpo"
    model = load_model(saved)
    assert isinstance(model, TRPO) and model.target_kl == 0.016
    result = evaluate_run(run, "train", trials=1, only=_train_objects(saved, 2))
    assert len(result.objects) == 2
    _assert_expert_composes(saved, TRPO)  # and distillable
    # continuing it with PPO would load a TRPO model as PPO: refused in one line before anything runs
    from resdex_sb3.train import main

    args = ["--algo", "ppo", "--env", "ResDexHyper", "--preset", "smoke", "--run-dir", str(run),
            "-i", str(run / "checkpoint.zip"), "-n", "128"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--algo trpo" in err, err
    assert model_steps(run / "ResDexHyper-v0.zip") == 256


def test_a_ppo_only_key_in_trpo_yml_is_one_line_naming_file_and_key(tmp_path):
    config = yaml.safe_load((ZOO_CONFIGS / "trpo.yml").read_text())
    config["ResDexHyper-v0"]["smoke"]["clip_range"] = 0.2
    bad = tmp_path / "trpo.yml"
    bad.write_text(yaml.safe_dump(config))
    done = _train(tmp_path / "run", "--algo", "trpo", "--preset", "smoke", "-conf", str(bad), "-n", "128")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "'clip_range'" in lines[0], done.stderr
    assert "'target_kl'" in lines[0]  # the allowed keys are TRPO's
    assert not (tmp_path / "run").exists()
