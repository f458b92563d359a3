"""The SB3 VecEnv contract, gym registration, bad input and physics blow-ups."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env

from envs.factory import make_vec_env
from envs.render import MULTISAMPLES, SHADOW_MAP_SIZE, FrameRenderer, RenderUnavailableError


def test_gym_make_gives_single_envs_of_both_variants():
    hyper = gym.make("ResDexHyper")
    obs, _ = hyper.reset(seed=0)
    assert obs.shape == (202,) and obs.dtype == np.float32
    base = gym.make("ResDexBase-v0")
    assert base.observation_space.shape == (128,)


def test_sb3_check_env_on_the_single_env():
    check_env(gym.make("ResDexBase-v0").unwrapped, warn=True)
    check_env(gym.make("ResDexHyper-v0").unwrapped, warn=True)


def test_infos_only_for_finished_envs_with_terminal_observation():
    env = make_vec_env("ResDexBase", num_envs=4, seed=0, episode_length=5, num_threads=1)
    obs = env.reset()
    for step in range(5):
        obs, rewards, dones, infos = env.step(np.zeros((4, 24), np.float32))
        if step < 4:
            assert not dones.any() and all(info == {} for info in infos)
    assert dones.all()
    for info in infos:
        assert info["TimeLimit.truncated"] is True
        assert info["terminal_observation"].shape == (128,)
        assert {"is_success", "is_held", "episode", "reward_terms"} <= set(info)
        assert info["episode"]["l"] == 5
        assert set(info["reward_terms"]) == {"finger_dist", "hand_dist", "goal_hand", "hand_up", "bonus", "proposal"}
        assert info["episode"]["r"] == pytest.approx(sum(info["reward_terms"].values()), rel=1e-5)
    # auto-reset: the returned observation is a fresh episode's, not the terminal one
    assert not np.allclose(obs[0], infos[0]["terminal_observation"])
    assert (env.task.progress == 0).all()


def _reset_state(seed):
    env = make_vec_env("ResDexHyper", num_envs=3, seed=seed, num_threads=1)
    obs = env.reset()
    return obs, env.task.sim.qpos.copy()


def test_seeding_makes_resets_reproducible():
    obs_a, qpos_a = _reset_state(7)
    obs_b, qpos_b = _reset_state(7)
    obs_c, qpos_c = _reset_state(8)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(qpos_a, qpos_b)
    assert not np.allclose(qpos_a, qpos_c)  # other start yaws ...
    np.testing.assert_allclose(obs_a, obs_c, atol=1e-5)  # ... that the start-yaw frame hides, as the reference


def test_get_attr_and_env_method():
    env = make_vec_env("ResDexBase", num_envs=3, num_threads=1)
    assert env.get_attr("render_mode") == [None, None, None]
    assert [o.name for o in env.get_attr("objects")] == [o.name for o in env.task.objects]
    assert env.get_attr("progress", [1]) == [0]
    assert env.env_is_wrapped(gym.Wrapper) == [False, False, False]


@pytest.mark.parametrize(
    "actions, error, match",
    [
        (np.zeros((3, 23), np.float32), ValueError, "shape"),
        (np.zeros((3, 24), np.int64), TypeError, "floating"),
        (np.full((3, 24), np.nan, np.float32), ValueError, "NaN"),
        (np.full((3, 24), np.inf, np.float32), ValueError, "NaN or inf"),
    ],
)
def test_bad_actions_are_named(actions, error, match):
    env = make_vec_env("ResDexBase", num_envs=3, num_threads=1)
    env.reset()
    with pytest.raises(error, match=match):
        env.step(actions)


def test_unknown_options_are_named():
    with pytest.raises(ValueError, match="reward_scale"):
        make_vec_env("ResDexBase", num_envs=2, reward_scale=2.0)
    with pytest.raises(ValueError, match="ResDexFoo"):
        make_vec_env("ResDexFoo", num_envs=2)
    with pytest.raises(ValueError, match="obs_mode"):
        make_vec_env("ResDexBase", num_envs=2, obs_mode="pixels")
    env = make_vec_env("ResDexBase", num_envs=2, num_threads=1)
    env.set_options({"object": 3})
    with pytest.raises(ValueError, match="object"):
        env.reset()
    single = gym.make("ResDexBase-v0")
    with pytest.raises(ValueError, match="object"):
        single.reset(options={"object": 3})


def test_physics_blowup_resets_only_that_env():
    env = make_vec_env("ResDexBase", num_envs=3, seed=0, num_threads=1)
    env.reset()
    env.step(np.zeros((3, 24), np.float32))
    env.task.sim.qvel[1, :] = np.nan
    obs, rewards, dones, infos = env.step(np.zeros((3, 24), np.float32))
    assert dones.tolist() == [False, True, False]
    assert infos[1]["physics_reset"] is True and infos[1]["physics_resets"] == 1
    assert np.isfinite(infos[1]["terminal_observation"]).all()
    assert np.isfinite(obs).all() and np.isfinite(rewards).all()
    obs, _, dones, _ = env.step(np.zeros((3, 24), np.float32))
    assert not dones.any() and np.isfinite(env.task.sim.qpos).all()


def test_render_returns_frames_or_a_clear_error():
    env = make_vec_env("ResDexBase", num_envs=2, num_threads=1, render_mode="rgb_array")
    env.reset()
    try:
        frame = env.render()
    except RenderUnavailableError as err:
        assert "MUJOCO_GL" in str(err)
        pytest.skip(f"no GL here: {err}")
    assert frame.shape == (480, 640, 3) and frame.std() > 0
    env.close()


def test_frames_use_the_renderers_shadow_map_and_leave_the_models_settings_alone():
    env = make_vec_env("ResDexBase", num_envs=1, num_threads=1)
    env.reset()
    model, data = env.task.sim.model_of(0), env.task.sim.data_of(0)
    mujocos_own = model.vis.quality.shadowsize, model.vis.quality.offsamples
    frames = {}
    for size, samples in ((SHADOW_MAP_SIZE, MULTISAMPLES), mujocos_own):
        renderer = FrameRenderer(60, 80, shadow_map_size=size, multisamples=samples)
        try:
            frames[size] = renderer.render(model, data)
        except RenderUnavailableError as err:
            pytest.skip(f"no GL here: {err}")
        renderer.close()
    assert (model.vis.quality.shadowsize, model.vis.quality.offsamples) == mujocos_own
    assert SHADOW_MAP_SIZE < mujocos_own[0]
    assert frames[SHADOW_MAP_SIZE].shape == frames[mujocos_own[0]].shape == (60, 80, 3)
    assert not np.array_equal(frames[SHADOW_MAP_SIZE], frames[mujocos_own[0]])  # the settings reached the context
    env.close()


def test_ppo_smoke_run_on_the_vec_env():
    env = make_vec_env("ResDexHyper", num_envs=8, seed=0, episode_length=16, num_threads=1)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=512)
    assert model.num_timesteps >= 512
    assert len(model.ep_info_buffer) >= 8
    assert len(model.ep_success_buffer) >= 8
