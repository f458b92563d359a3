"""PPO training throughput against the bare VecEnv, measured side by side in one run.

For a preset's settings of ResDexBase (default `cpu`: 256 envs, 16 steps, 5 epochs, batch 1024,
[256, 256, 128] ELU) this prints the VecEnv's env-steps/s under random actions; PPO's env-steps/s (rollouts plus
updates) with one torch thread throughout, and as the `cpu` preset runs it (``callbacks.UpdateThreads``: every
core for the update when probing finds that faster); and, for truncation-heavy rollouts, SB3's per-env bootstrap
loop against the batched callback. The last line is PPO (as the preset runs it) ÷ VecEnv.

    python benchmarks/train_throughput.py [--quick]
    python benchmarks/train_throughput.py --backend warp --preset paper --envs 8192   # on a GPU

``--backend warp`` (``--device``) runs the physics on MuJoCo Warp; the policy then trains where torch finds CUDA.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

import envs  # noqa: F401
from callbacks.batched_timeout_bootstrap import BatchedTimeoutBootstrap
from callbacks.update_threads import UpdateThreads
from envs.config import BACKENDS, DEFAULT_BACKEND
from envs.factory import make_vec_env
from envs.objects.embedded import embedded_objects
from resdex_sb3.policies import GeometryUnawarePolicy
from resdex_sb3.zoo_manager import DEFAULT_CONFIG, preset_policy, select_preset


def bench_env(n_envs: int, physics: dict[str, str], **options: object) -> VecEnv:
    """ResDexBase over the small embedded set's mixed objects on the chosen physics backend, episodes
    desynchronised as every training preset runs them (some envs reset on almost every step)."""
    return make_vec_env("ResDexBase", n_envs, embedded_objects("small"), seed=0, **physics,
                        **{"random_initial_progress": True, **options})  # fmt: skip


def vec_env_rate(n_envs: int, steps: int, physics: dict[str, str]) -> float:
    env = bench_env(n_envs, physics)
    env.reset()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, n_envs, 24)).astype(np.float32)
    began = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps * n_envs / (time.perf_counter() - began)


def ppo_rate(n_envs: int, timesteps: int, update_threads: bool, preset: str, physics: dict[str, str]) -> float:
    p = select_preset(DEFAULT_CONFIG, "ResDexBase-v0", preset)
    env = VecNormalize(bench_env(n_envs, physics), norm_reward=False, clip_obs=5.0)
    policy, policy_kwargs = preset_policy(p)
    model = PPO(policy, env, n_steps=p["n_steps"], batch_size=p["batch_size"], n_epochs=p["n_epochs"],
                gamma=p["gamma"], gae_lambda=p["gae_lambda"], vf_coef=p["vf_coef"], seed=0,
                policy_kwargs=policy_kwargs)  # fmt: skip
    callbacks = [BatchedTimeoutBootstrap()] + ([UpdateThreads()] if update_threads else [])
    model.learn(n_envs * p["n_steps"], callback=callbacks)  # warm-up iteration
    before, began = model.num_timesteps, time.perf_counter()
    model.learn(timesteps, callback=callbacks, reset_num_timesteps=False)  # whole iterations: at least timesteps
    return (model.num_timesteps - before) / (time.perf_counter() - began)


def bootstrap_seconds(n_envs: int, batched: bool, physics: dict[str, str]) -> float:
    env = bench_env(n_envs, physics, episode_length=4, random_initial_progress=False)  # 2 truncations each, together
    model = PPO(GeometryUnawarePolicy, env, n_steps=8, batch_size=n_envs * 8, n_epochs=1, seed=0,
                policy_kwargs={"net_arch": {"pi": [1024, 1024, 512, 512], "vf": [1024, 1024, 512, 512]}})  # fmt: skip
    began = time.perf_counter()
    model.learn(n_envs * 8, callback=BatchedTimeoutBootstrap() if batched else None)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="under 3 minutes")
    parser.add_argument("--preset", default="cpu", help="ResDexBase preset of zoo_configs/ppo.yml (nets, rollout)")
    parser.add_argument("--envs", type=int, default=None, help="envs (default: the preset's n_envs)")
    parser.add_argument("--timesteps", type=int, default=None, help="timed PPO steps (default 262,144; --quick 65,536)")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    parser.add_argument("--device", default=None, help="warp device (warp backend; default CUDA when present)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    physics = {"backend": args.backend, **({"device": args.device} if args.device else {})}
    n_envs = args.envs or select_preset(DEFAULT_CONFIG, "ResDexBase-v0", args.preset)["n_envs"]
    timesteps = args.timesteps or (65_536 if args.quick else 262_144)
    raw = vec_env_rate(n_envs, 100 if args.quick else 400, physics)
    plain_ppo = ppo_rate(n_envs, timesteps, False, args.preset, physics)
    ppo = ppo_rate(n_envs, timesteps, True, args.preset, physics)
    print(f"{args.preset} preset, backend {args.backend}, policy on {'cuda' if torch.cuda.is_available() else 'cpu'}")
    print(f"VecEnv random actions: {raw:,.0f} env-steps/s ({n_envs} envs)")
    print(f"PPO, one torch thread throughout ({args.preset} nets, rollouts + updates): {plain_ppo:,.0f} env-steps/s "
          f"(ratio {plain_ppo / raw:.3f})")
    print(f"PPO with callbacks.UpdateThreads (probed, as the cpu preset runs): {ppo:,.0f} env-steps/s "
          f"({ppo / plain_ppo:.2f}x)")
    n_boot = 512 if args.quick else 2048
    plain, batched = bootstrap_seconds(n_boot, False, physics), bootstrap_seconds(n_boot, True, physics)
    print(f"truncation bootstrap, {n_boot} envs x 8 steps, 2 truncations, ResDex nets: SB3 loop {plain:.2f} s, "
          f"batched callback {batched:.2f} s ({plain / batched:.2f}x)")  # fmt: skip
    print(f"ratio: {ppo / raw:.3f}")


if __name__ == "__main__":
    main()
