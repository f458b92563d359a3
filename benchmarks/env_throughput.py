"""Env-steps/s of raw physics (``Batch.step``, or MuJoCo Warp's step with ``--backend warp``) and of our VecEnv,
measured side by side in one run.

The VecEnv figure includes action validation and mapping, observations, rewards, infos and auto-resets of
random-action episodes, desynchronised as every training preset runs them (``random_initial_progress``), so
that some envs reset on almost every step. Both run the same primitive-object batch with the same thread count;
the two are interleaved (raw, vec, raw, vec, ...) and each keeps its best round, so machine noise hits both
alike.
``host`` is the VecEnv's time per step outside the simulation's ``step`` and ``reset`` (the task's numpy work
and the SB3 adapter; on CUDA the host copies count as the simulation's): the ceiling it puts on env-steps/s
however fast the physics. Last line: ``ratio: X`` = VecEnv / raw at the largest size.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

import envs  # noqa: F401
from envs.config import BACKENDS, DEFAULT_BACKEND
from envs.factory import make_vec_env


def _raw_rate(env, steps: int) -> float:
    """Physics alone, driven by the controls the VecEnv would send for the same kind of random actions."""
    sim, substeps = env.task.sim, env.task.scene.config.substeps
    rng = np.random.default_rng(1)
    ctrl = np.empty((steps,) + sim.ctrl.shape)
    for k in range(steps):  # untimed: map random actions to controls exactly as the task does
        env.task._apply_actions(rng.uniform(-1, 1, size=(env.num_envs, 24)))
        ctrl[k] = sim.ctrl
    warp = env.task.backend == "warp"
    start = time.perf_counter()
    for k in range(steps):
        sim.ctrl[:] = ctrl[k]
        if warp:  # controls to the device (a no-op on warp's CPU device), then the device step alone
            sim.push()
            sim.step_physics(substeps)
        else:
            sim.batch.step(nstep=substeps)
    if warp:
        sim.pull()  # waits for the device
    return steps * env.num_envs / (time.perf_counter() - start)


def _vec_rate(env, steps: int) -> tuple[float, float]:
    """The VecEnv's env-steps/s, and its seconds per step spent outside the simulation's ``step`` and ``reset``."""
    rng = np.random.default_rng(1)
    actions = rng.uniform(-1, 1, size=(steps, env.num_envs, 24)).astype(np.float32)
    sim = env.task.sim
    in_sim = [0.0]

    def timed(name: str):
        method = getattr(type(sim), name)

        def call(*args, **kwargs):
            began = time.perf_counter()
            try:
                return method(sim, *args, **kwargs)
            finally:
                in_sim[0] += time.perf_counter() - began

        return call

    sim.step, sim.reset = timed("step"), timed("reset")  # instance attributes, deleted below
    try:
        start = time.perf_counter()
        for k in range(steps):
            env.step(actions[k])
        elapsed = time.perf_counter() - start
    finally:
        del sim.step, sim.reset
    return steps * env.num_envs / elapsed, (elapsed - in_sim[0]) / steps


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short rounds (under a minute)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="physics threads (mujoco backend)")
    parser.add_argument("--backend", choices=BACKENDS, default=DEFAULT_BACKEND)
    parser.add_argument("--device", default=None, help="warp device (warp backend; default CUDA when present)")
    parser.add_argument("--steps", type=int, default=None, help="control steps per round (default 200, --quick 40)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per size (default 5, --quick 3)")
    args = parser.parse_args()
    steps, rounds = (40, 3) if args.quick else (200, 5)
    steps, rounds = args.steps or steps, args.rounds or rounds
    engine = f"backend=warp device={args.device or 'auto'}" if args.backend == "warp" else f"threads={args.threads}"
    print(f"{engine} steps/round={steps} rounds={rounds} (best round kept)")
    ratio = float("nan")
    for n in args.sizes:
        rss_before = _rss_mib()
        start = time.perf_counter()
        env = make_vec_env("ResDexHyper", num_envs=n, seed=0, num_threads=args.threads, backend=args.backend,
                           device=args.device, random_initial_progress=True)  # fmt: skip
        env.reset()
        env.step(np.zeros((n, 24), np.float32))  # warp: the first step compiles or loads its kernels
        build_s = time.perf_counter() - start
        rss_per_env_kib = (_rss_mib() - rss_before) * 1024 / n
        _vec_rate(env, 5)  # warm-up: first contacts, caches
        raw, vec, host = 0.0, 0.0, float("inf")
        for _ in range(rounds):
            raw = max(raw, _raw_rate(env, steps))
            rate, host_s = _vec_rate(env, steps)
            vec, host = max(vec, rate), min(host, host_s)
        ratio = vec / raw
        raw_name = "raw warp step" if args.backend == "warp" else "raw Batch.step"
        print(f"N={n:5d}  {raw_name} {raw:9.0f} env-steps/s   VecEnv {vec:9.0f} env-steps/s   "
              f"VecEnv/raw {ratio:.3f}   host {host * 1e3:.1f} ms/step (cap {n / host:,.0f} env-steps/s)   "
              f"peak RSS growth {rss_per_env_kib:.1f} KiB/env   build+first step {build_s:.1f} s")  # fmt: skip
    print(f"ratio: {ratio:.3f}")


if __name__ == "__main__":
    main()
