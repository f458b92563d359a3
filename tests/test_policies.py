"""ResDex policies (geometry-unaware base, residual-MoE hyper-policy) and the composer that mixes the bases."""

import math
import pickle
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from torch import nn

from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects
from resdex_sb3.composer import ResidualMoEComposer
from resdex_sb3.policies import POLICY_ALIASES, GeometryUnawarePolicy, ObsSlice, ResidualMoEPolicy

N_ENVS = 16
SMALL = dict(net_arch=[64, 64])
PPO_KW = dict(n_steps=16, batch_size=64, n_epochs=2, seed=0, device="cpu")


class ResDexPPO(PPO):
    """PPO that knows the ResDex policies by name, the way a training entry point would register them."""

    policy_aliases = {**PPO.policy_aliases, **POLICY_ALIASES}


def _constant_lr(_: float) -> float:
    return 3e-4


def _hyper_env(**task_kwargs):
    return make_vec_env("ResDexHyper", N_ENVS, primitive_objects(), seed=0, num_threads=1, **task_kwargs)


def _train_base(folder, seed, model_name="model.zip", stats_name="vecnormalize.pkl"):
    env = VecNormalize(make_vec_env("ResDexBase", N_ENVS, primitive_objects(), seed=seed, num_threads=1),
                       norm_reward=False, clip_obs=5.0)  # fmt: skip
    model = ResDexPPO("GeometryUnawarePolicy", env, policy_kwargs=SMALL, **{**PPO_KW, "seed": seed})
    model.learn(256)
    (folder / stats_name).parent.mkdir(parents=True, exist_ok=True)
    model.save(folder / model_name)
    env.save(folder / stats_name)
    return folder


@pytest.fixture(scope="module")
def base_paths(tmp_path_factory):
    """Two tiny trained bases: a plain run folder and an rl-zoo style one (stats one folder down), as a zip path."""
    plain = _train_base(tmp_path_factory.mktemp("base0"), seed=0)
    zoo = _train_base(tmp_path_factory.mktemp("base1"), seed=1, model_name="ResDexBase-v0.zip",
                      stats_name="ResDexBase-v0/vecnormalize.pkl")  # fmt: skip
    return [plain, zoo / "ResDexBase-v0.zip"]


def _hand_composition(paths, obs, hyper):
    """The composition written out with SB3's own VecNormalize and predict, one base at a time."""
    stats = [paths[0] / "vecnormalize.pkl", paths[1].parent / "ResDexBase-v0" / "vecnormalize.pkl"]
    models = [paths[0] / "model.zip", paths[1]]
    k = len(paths)
    logits = hyper[:, :k] - hyper[:, :k].max(axis=1, keepdims=True)
    weights = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    mixed = np.zeros((len(obs), 24))
    for i, (model_path, stats_path) in enumerate(zip(models, stats)):
        with open(stats_path, "rb") as file:
            normalizer = pickle.load(file)
        base = PPO.load(model_path, device="cpu")
        action, _ = base.predict(normalizer.normalize_obs(obs[:, :128]), deterministic=True)
        mixed += weights[:, i : i + 1] * np.clip(action, -1, 1)
    return np.clip(mixed + hyper[:, k:], -1, 1), weights


def test_obs_slice_keeps_one_slice_and_rejects_slices_that_do_not_fit():
    space = gym.spaces.Box(-1, 1, (10,), np.float32)
    extractor = ObsSlice(space, 2, 5)
    obs = th.arange(20.0).reshape(2, 10)
    assert extractor.features_dim == 3
    assert th.equal(extractor(obs), obs[:, 2:5])
    assert ObsSlice(space, 4).features_dim == 6
    for start, end in [(0, 11), (5, 5), (-1, 3)]:
        with pytest.raises(ValueError, match="does not fit"):
            ObsSlice(space, start, end)


def test_policies_default_to_the_resdex_networks():
    obs_space = gym.spaces.Box(-5, 5, (202,), np.float32)
    fast = dict(ortho_init=False)  # orthogonalising 1024-wide layers costs seconds; the init has its own test
    base = GeometryUnawarePolicy(obs_space, gym.spaces.Box(-1, 1, (24,), np.float32), _constant_lr, **fast)
    hyper = ResidualMoEPolicy(obs_space, gym.spaces.Box(-1, 1, (4 + 24,), np.float32), _constant_lr, **fast)
    for policy in (base, hyper):
        widths = [m.out_features for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
        assert widths == [1024, 1024, 512, 512]
        assert [m.out_features for m in policy.mlp_extractor.value_net if isinstance(m, nn.Linear)] == widths
        assert any(isinstance(m, nn.ELU) for m in policy.mlp_extractor.policy_net)
        np.testing.assert_allclose(policy.log_std.detach().numpy(), math.log(0.8), rtol=1e-6)
    assert isinstance(base.features_extractor, ObsSlice) and base.features_dim == 128
    assert hyper.features_dim == 202 and hyper.num_bases == 4
    with pytest.raises(ValueError, match="no mixing logits"):
        ResidualMoEPolicy(obs_space, gym.spaces.Box(-1, 1, (24,), np.float32), _constant_lr)


def test_geometry_unaware_policy_ignores_everything_after_the_base_observation():
    obs_space = gym.spaces.Box(-5, 5, (202,), np.float32)
    policy = GeometryUnawarePolicy(obs_space, gym.spaces.Box(-1, 1, (24,), np.float32), _constant_lr, **SMALL)
    rng = np.random.default_rng(0)
    obs = rng.uniform(-5, 5, (32, 202)).astype(np.float32)
    other = obs.copy()
    other[:, 128:] = rng.uniform(-5, 5, (32, 74))
    with th.no_grad():
        for method in (policy._predict, lambda o, deterministic: policy.predict_values(o)):
            np.testing.assert_array_equal(method(th.as_tensor(obs), deterministic=True),
                                          method(th.as_tensor(other), deterministic=True))  # fmt: skip
    changed = obs.copy()
    changed[:, :128] += 0.5
    assert not np.allclose(policy.predict(obs, deterministic=True)[0], policy.predict(changed, deterministic=True)[0])


def _assert_reload_acts_identically(model, path, obs):
    model.save(path)
    loaded = PPO.load(path, device="cpu")
    assert type(loaded.policy) is type(model.policy)
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])


def test_geometry_unaware_policy_trains_saves_and_reloads(tmp_path):
    env = VecNormalize(_hyper_env(), norm_reward=False)  # the 202-d obs: the policy slices its prefix
    model = ResDexPPO("GeometryUnawarePolicy", env, policy_kwargs=SMALL, **PPO_KW)
    model.learn(256)
    _assert_reload_acts_identically(model, tmp_path / "model.zip", env.reset())


def test_residual_moe_policy_trains_on_the_composer_saves_and_reloads(tmp_path, base_paths):
    composer = ResidualMoEComposer(_hyper_env(), base_paths)
    env = VecNormalize(composer, norm_reward=False, clip_obs=5.0)
    model = ResDexPPO("ResidualMoEPolicy", env, policy_kwargs=SMALL, **PPO_KW)
    assert model.action_space.shape == (2 + 24,)
    model.learn(512)
    assert composer.last_weights.shape == (N_ENVS, 2) and composer.last_residual.shape == (N_ENVS, 24)
    np.testing.assert_allclose(composer.last_weights.sum(axis=1), 1, rtol=1e-6)
    _assert_reload_acts_identically(model, tmp_path / "model.zip", env.reset())


def test_composer_equals_the_hand_computation_and_follows_auto_resets(base_paths):
    env = _hyper_env(episode_length=3)
    composer = ResidualMoEComposer(env, base_paths)
    assert composer.base_paths == list(base_paths)
    assert composer.action_space.shape == (26,)
    np.testing.assert_array_equal(composer.action_space.low[:3], [-10, -10, -1])
    sent = []
    inner_step_async = env.step_async
    env.step_async = lambda actions: (sent.append(np.array(actions)), inner_step_async(actions))[1]

    rng = np.random.default_rng(1)
    obs = composer.reset()
    for step in range(4):  # crosses the auto-reset after step 3
        hyper = np.concatenate([rng.uniform(-3, 3, (N_ENVS, 2)), rng.uniform(-1, 1, (N_ENVS, 24))], 1)
        expected, weights = _hand_composition(base_paths, obs, hyper)
        np.testing.assert_allclose(composer.compose(obs, hyper), expected, atol=1e-5)
        obs_next, _, dones, infos = composer.step(hyper.astype(np.float32))
        np.testing.assert_allclose(sent[-1], expected, atol=1e-5)
        np.testing.assert_allclose(composer.last_weights, weights, atol=1e-6)
        np.testing.assert_allclose(composer.last_residual, hyper[:, 2:], atol=1e-6)
        if step == 2:
            assert dones.all()
            assert not np.allclose(obs_next, np.stack([info["terminal_observation"] for info in infos]))
        obs = obs_next  # the next action must be composed from the new episode's first observation


def test_untrained_residual_moe_policy_mixes_uniformly_with_a_small_residual(base_paths):
    composer = ResidualMoEComposer(_hyper_env(), base_paths)
    policy = ResidualMoEPolicy(composer.observation_space, composer.action_space, _constant_lr)
    obs = th.as_tensor(np.clip(composer.reset(), -5, 5))
    with th.no_grad():
        action = policy._predict(obs, deterministic=True)
    weights, residual = th.softmax(action[:, :2], dim=-1).numpy(), action[:, 2:].numpy()
    np.testing.assert_allclose(weights, 0.5, atol=0.02)
    assert np.abs(residual).max() < 0.05


def test_composers_share_a_loaded_base_until_its_file_changes(tmp_path, base_paths):
    first, second = ResidualMoEComposer(_hyper_env(), base_paths), ResidualMoEComposer(_hyper_env(), base_paths)
    assert all(a is b for a, b in zip(first.bases, second.bases))  # the training env's and the eval env's bases
    assert all(not p.requires_grad for base in first.bases for p in base.parameters())
    copy = tmp_path / "base"
    shutil.copytree(base_paths[0], copy)
    from_copy = ResidualMoEComposer(_hyper_env(), [copy])
    assert from_copy.bases[0] is not first.bases[0]  # another file, even with the same bytes
    _train_base(copy, seed=7)
    retrained = ResidualMoEComposer(_hyper_env(), [copy])
    assert retrained.bases[0] is not from_copy.bases[0]  # a base retrained in place is loaded again
    changed = [not th.equal(a, b) for a, b in zip(retrained.bases[0].parameters(), from_copy.bases[0].parameters())]
    assert any(changed)


def test_residual_std_starts_apart_from_the_logit_std_and_survives_save_and_load(tmp_path, base_paths):
    env = VecNormalize(ResidualMoEComposer(_hyper_env(), base_paths), norm_reward=False, clip_obs=5.0)
    kwargs = {**SMALL, "residual_log_std_init": math.log(0.1)}
    model = ResDexPPO("ResidualMoEPolicy", env, policy_kwargs=kwargs, **PPO_KW)
    std = model.policy.log_std.exp().detach().numpy()
    np.testing.assert_allclose(std[:2], 0.8, rtol=1e-6)  # logits keep ResDex's 0.8
    np.testing.assert_allclose(std[2:], 0.1, rtol=1e-6)
    model.save(tmp_path / "model.zip")
    loaded = ResDexPPO.load(tmp_path / "model.zip", device="cpu")
    assert loaded.policy.residual_log_std_init == pytest.approx(math.log(0.1))
    np.testing.assert_allclose(loaded.policy.log_std.exp().detach().numpy(), std, rtol=1e-6)


def test_composer_rejects_bases_that_do_not_fit_and_names_them(tmp_path, base_paths):
    hyper_base = tmp_path / "hyper_base.zip"  # a base whose observation is the 202-d hyper one
    PPO(GeometryUnawarePolicy, _hyper_env(), policy_kwargs=SMALL, device="cpu").save(hyper_base)
    with pytest.raises(ValueError, match=f"{hyper_base}.*shape \\(202,\\)"):
        ResidualMoEComposer(_hyper_env(), [base_paths[0], hyper_base])

    class SevenJointHand(gym.Env):
        observation_space = gym.spaces.Box(-5, 5, (128,), np.float32)
        action_space = gym.spaces.Box(-1, 1, (7,), np.float32)

    narrow_base = tmp_path / "narrow" / "model.zip"
    narrow_base.parent.mkdir()
    PPO(GeometryUnawarePolicy, DummyVecEnv([SevenJointHand]), policy_kwargs=SMALL, device="cpu").save(narrow_base)
    with pytest.raises(ValueError, match=f"{narrow_base}.*actions of shape \\(7,\\)"):
        ResidualMoEComposer(_hyper_env(), [narrow_base.parent])

    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match=f"base policy 1 \\({missing}\\)"):
        ResidualMoEComposer(_hyper_env(), [base_paths[0], missing])
    truncated = tmp_path / "truncated" / "model.zip"  # a copy cut short, as a full disk or a killed copy leaves it
    truncated.parent.mkdir()
    truncated.write_bytes((base_paths[0] / "model.zip").read_bytes()[:2000])
    with pytest.raises(ValueError, match=f"base policy 1 .*{truncated}.*truncated"):
        ResidualMoEComposer(_hyper_env(), [base_paths[0], truncated])
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=f"{empty}.*0 .zip"):
        ResidualMoEComposer(_hyper_env(), [empty])
