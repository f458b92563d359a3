"""How much of a stock imitation DAgger run goes into its per-episode demonstration files, next to our ring buffer.

Stock: ``SimpleDAggerTrainer.train`` on ``ResDexVision`` (beta 0, the student acting, BC for one epoch per round):
every finished episode is written as one HuggingFace ``datasets`` folder, and every round reads all of them back
(``_load_all_demos``) and BC retrains over everything gathered so far. The timers wrap imitation's own
``_save_dagger_demo`` and ``serialize.load``. Ours: ``RingBufferDAggerTrainer`` for the same env steps, each
step one array copy into the buffer. Both use the same student (the cpu preset's), env and stand-in expert (zero
actions: what the expert outputs does not change the file cost; ``--expert RUN`` uses a real hyper run).

Last line: ``ratio: X`` = share of the stock run's wall time spent writing and reading demonstration files.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3.common.policies import BasePolicy

import envs  # noqa: F401
from envs.factory import make_vec_env
from envs.objects.primitives import primitive_objects


class _ZeroExpert(BasePolicy):
    """Stand-in expert: zero hand action for any observation."""

    def _predict(self, observation: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return th.zeros((len(observation), self.action_space.shape[0]))

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        return self._predict(obs)


def _timed(module, name: str, totals: dict[str, float], key: str) -> None:
    """Wrap ``module.name`` so its wall time adds up in ``totals[key]``."""
    inner = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start
            totals[key + "_calls"] += 1

    setattr(module, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-envs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="stock rounds, each one full 200-step episode per env")
    parser.add_argument("--mode", default="gt_pose", choices=("gt_pose", "camera"))
    parser.add_argument("--expert", default=None, help="a ResDexHyper run folder instead of the zero expert")
    parser.add_argument("--num-threads", type=int, default=1)
    args = parser.parse_args()
    th.set_num_threads(args.num_threads)
    from imitation.algorithms import bc, dagger
    from imitation.data import serialize

    from resdex_sb3.dagger import (ConstantBetaSchedule, DeterministicMSELoss, PrivilegedExpertPolicy,
                                   RingBufferDAggerTrainer, StepLogger, TransitionRingBuffer)  # fmt: skip
    from resdex_sb3.presets import load_distill_preset
    from resdex_sb3.policies import VisionStudentPolicy

    totals = {"save": 0.0, "save_calls": 0, "load": 0.0, "load_calls": 0}
    _timed(dagger, "_save_dagger_demo", totals, "save")
    _timed(serialize, "load", totals, "load")
    budget = load_distill_preset("cpu")
    env = make_vec_env("ResDexVision", args.n_envs, primitive_objects(), seed=0, num_threads=args.num_threads,
                       cloud_mode=args.mode)  # fmt: skip
    if args.expert:
        expert: BasePolicy = PrivilegedExpertPolicy.from_run(args.expert, env)
    else:
        expert = _ZeroExpert(env.observation_space, env.action_space)
    episode = env.task.config.episode_length
    steps = args.rounds * episode * args.n_envs

    logs = tempfile.TemporaryDirectory()
    logger = StepLogger(logs.name, ["csv"])  # quiet: imitation's default logger prints a table per round

    def make_bc(batch_size: int) -> bc.BC:
        student = VisionStudentPolicy(env.observation_space, env.action_space, lambda _: 1e-3,
                                      **budget["policy_kwargs"])  # fmt: skip
        trainer = bc.BC(observation_space=env.observation_space, action_space=env.action_space,
                        rng=np.random.default_rng(0), policy=student, batch_size=batch_size, ent_weight=0.0,
                        optimizer_kwargs={"lr": 1e-3}, device="cpu", custom_logger=logger)  # fmt: skip
        trainer.loss_calculator = DeterministicMSELoss()
        return trainer

    train_kwargs = {"n_epochs": 1, "progress_bar": False, "log_rollouts_venv": None, "log_interval": 10**9}
    batch_size = 256
    with tempfile.TemporaryDirectory() as scratch:
        stock = dagger.SimpleDAggerTrainer(venv=env, scratch_dir=scratch, expert_policy=expert,
                                           rng=np.random.default_rng(0), bc_trainer=make_bc(batch_size),
                                           beta_schedule=ConstantBetaSchedule(0.0), custom_logger=logger)  # fmt: skip
        start = time.perf_counter()
        stock.train(steps, rollout_round_min_episodes=args.n_envs, rollout_round_min_timesteps=episode * args.n_envs,
                    bc_train_kwargs=train_kwargs)  # fmt: skip
        stock_wall = time.perf_counter() - start
        disk = sum(p.stat().st_size for p in Path(scratch).rglob("*") if p.is_file())
    files = totals["save"] + totals["load"]
    print(f"stock SimpleDAggerTrainer: {steps:,} env steps ({args.n_envs} envs, {args.mode}) in {stock_wall:.1f} s; "
          f"{int(totals['save_calls'])} episode files written in {totals['save']:.1f} s, "
          f"{int(totals['load_calls'])} read back in {totals['load']:.1f} s, "
          f"{disk / 2**20:.0f} MiB on disk")  # fmt: skip

    # ours, same env steps: one continuous rollout, ring buffer of `buffer_steps`, one BC epoch per round
    per_round = budget["steps_per_round"]
    capacity = args.n_envs * budget["buffer_steps"]
    batch = max(1, capacity // budget["n_minibatches"])
    buffer = TransitionRingBuffer(capacity, env.observation_space.shape[0], 24, batch)
    ours = RingBufferDAggerTrainer(venv=env, scratch_dir=logs.name, rng=np.random.default_rng(0),
                                   bc_trainer=make_bc(buffer.batch_size), buffer=buffer,
                                   beta_schedule=ConstantBetaSchedule(0.0), custom_logger=logger)  # fmt: skip
    collector = ours.create_trajectory_collector()
    obs = collector.reset()
    add_seconds = 0.0
    start = time.perf_counter()
    for _ in range(steps // (per_round * args.n_envs)):
        for _ in range(per_round):
            obs, *_ = collector.step(expert.predict(obs, deterministic=True)[0])
        tick = time.perf_counter()
        buffer.add(obs, np.zeros((args.n_envs, 24), np.float32))  # time one more copy: what buffering costs a step
        add_seconds += (time.perf_counter() - tick) * per_round
        ours.extend_and_update(train_kwargs)
    ours_wall = time.perf_counter() - start
    print(f"ring buffer RingBufferDAggerTrainer: same env steps in {ours_wall:.1f} s; buffering ~{add_seconds:.2f} s "
          f"({100 * add_seconds / ours_wall:.1f} %), nothing on disk")  # fmt: skip
    logs.cleanup()
    print(f"ratio: {files / stock_wall:.2f}")


if __name__ == "__main__":
    main()
