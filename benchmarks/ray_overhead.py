"""What ``--ray`` costs on the smoke pipeline, and what the ``paper`` preset needs, in one run.

1. **Overhead.** The ``smoke`` pipeline twice on fresh copies of the small object set: serially, then with
   ``--ray local --ray-cpus-per-job 1`` (a local cluster of this machine's cores, started and stopped by the
   pipeline, so the ratio includes Ray's start-up). Prints both wall times, the sum of the stages' own seconds
   (from ``pipeline.json``) and the ratio Ray ÷ serial. Both runs produce the same stage outputs.
2. **Paper plan.** Per-step costs measured here: a short PPO run of ``ResDexBase`` and of ``ResDexHyper`` (on the
   smoke run's bases and shape codes) with the paper's network widths, ``--n-envs`` envs and one torch thread, with
   rollout and update timed apart. From those, for the ``paper`` budgets of ``zoo_configs/pipeline.yml`` (and
   ``distill.yml``): the jobs, the core-hours, and the wall time of the stage graph list-scheduled on N machines
   of 2 cores (one job per machine) and on M GPUs (one job per GPU, with ``--cores-per-gpu`` cores for its physics;
   the update ``--gpu-update-speedup`` times faster than on 2 cores). Assumptions, printed with the numbers: every
   cluster's first base passes its gate at its step cap (the worst case; the gate usually stops bases earlier, and
   a failed gate adds attempts), a student's step costs a hyper-policy step, evaluation is left out (minutes).

    python benchmarks/ray_overhead.py [--machines 4 16 64] [--gpus 1 4 8] [--plan-only --base-rate R --hyper-rate R]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_pipeline(out: Path, data: Path, ray: bool) -> float:
    """Seconds of one smoke pipeline run (serial or ``--ray local``)."""
    command = [sys.executable, "-m", "resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out)]
    if ray:
        command += ["--ray", "local", "--ray-cpus-per-job", "1"]
    env = {**os.environ, "RESDEX_DATA": str(data)}
    env.pop("RAY_ADDRESS", None)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def stage_seconds(out: Path) -> float:
    return sum(r.get("seconds", 0.0) for r in json.loads((out / "pipeline.json").read_text()).values())


def ppo_costs(env_id: str, n_envs: int, steps: int, env_kwargs: dict) -> tuple[float, float]:
    """(rollout, update) seconds per env step of PPO with the paper's widths on this machine, one torch thread."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    from resdex_sb3.env_builder import build_env
    from resdex_sb3.zoo_manager import DEFAULT_CONFIG, preset_policy, select_preset

    torch.set_num_threads(1)
    p = select_preset(DEFAULT_CONFIG, f"{env_id}-v0", "paper")
    root = env_kwargs.pop("_root", None)
    env = VecNormalize(build_env(f"{env_id}-v0", n_envs, 0, env_kwargs, root=root), norm_reward=False, clip_obs=5.0)
    policy, kwargs = preset_policy(p)
    model = PPO(policy, env, n_steps=p["n_steps"], batch_size=min(p["batch_size"], n_envs * p["n_steps"]),
                n_epochs=p["n_epochs"], seed=0, policy_kwargs=kwargs, device="cpu")  # fmt: skip
    spent = {"update": 0.0}
    train = model.train

    def timed_train() -> None:
        began = time.perf_counter()
        train()
        spent["update"] += time.perf_counter() - began

    model.train = timed_train
    model.learn(n_envs * p["n_steps"])  # warm-up
    spent["update"] = 0.0
    began = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    total = time.perf_counter() - began
    env.close()
    done = max(steps, n_envs * p["n_steps"])
    return (total - spent["update"]) / done, spent["update"] / done


def schedule(jobs: list[tuple[str, float, list[str]]], slots: int) -> float:
    """Makespan (hours) of ``(name, hours, deps)`` jobs list-scheduled in order on ``slots`` equal workers."""
    finish: dict[str, float] = {}
    free = [0.0] * slots
    heapq.heapify(free)
    for name, hours, deps in jobs:  # jobs are in a topological order; each starts when deps and a slot are free
        ready = max((finish[d] for d in deps), default=0.0)
        slot = heapq.heappop(free)
        start = max(slot, ready)
        finish[name] = start + hours
        heapq.heappush(free, finish[name])
    return max(finish.values())


def paper_jobs(base_s: float, hyper_s: float) -> list[tuple[str, float, list[str], int]]:
    """``(name, hours on one 2-core machine, deps, env steps)`` of the paper preset's training jobs."""
    from resdex_sb3.presets import load_distill_preset, load_pipeline_preset

    cfg, distill = load_pipeline_preset("paper"), load_distill_preset("paper")
    jobs = []
    bases = [f"base-{i}" for i in range(cfg["k"])]
    for name in bases:
        jobs.append((name, cfg["base_timesteps"] * base_s / 3600, [], cfg["base_timesteps"]))
    for seed in cfg["seeds"]:
        for prefix, deps in (("hyper", bases), ("baseline", [])):
            s1, s2 = f"{prefix}-stage1-seed{seed}", f"{prefix}-seed{seed}"
            jobs.append((s1, cfg["stage1_timesteps"] * hyper_s / 3600, deps, cfg["stage1_timesteps"]))
            jobs.append((s2, cfg["stage2_timesteps"] * hyper_s / 3600, [s1], cfg["stage2_timesteps"]))
    steps = cfg["distill_rounds"] * distill["n_envs"] * distill["steps_per_round"]
    first = f"hyper-seed{cfg['seeds'][0]}"
    for mode in ("gt_pose", "camera"):
        jobs.append((f"vision-{mode}", steps * hyper_s / 3600, [first], steps))
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, nargs="+", default=[4, 16, 64], help="N 2-core machines")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 4, 8], help="M GPUs")
    parser.add_argument("--cores-per-gpu", type=int, default=8, help="CPU cores beside each GPU (physics)")
    parser.add_argument("--gpu-update-speedup", type=float, default=20.0,
                        help="PPO update on a GPU vs on 2 cores (an assumption, not measured here)")
    parser.add_argument("--n-envs", type=int, default=256, help="envs of the cost measurement")
    parser.add_argument("--measure-steps", type=int, default=16_384, help="env steps of each cost measurement")
    parser.add_argument("--plan-only", action="store_true", help="skip the overhead runs (needs --*-rate)")
    parser.add_argument("--base-rate", type=float, default=None,
                        help="given instead of measured: (rollout, update) not split; base env steps/s on 2 cores")
    parser.add_argument("--hyper-rate", type=float, default=None, help="as --base-rate, for the hyper-policy")
    args = parser.parse_args()

    overhead = None
    with tempfile.TemporaryDirectory(prefix="ray_overhead_") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "data"
        serial_out, ray_out = tmp_path / "serial", tmp_path / "ray"
        if not args.plan_only:
            from envs.objects.build import build_embedded
            from envs.objects.store import ObjectStore

            build_embedded(ObjectStore(data), "small", proposals=False)
            serial = run_pipeline(serial_out, data, ray=False)
            on_ray = run_pipeline(ray_out, data, ray=True)
            print(f"smoke pipeline, {os.cpu_count()} cores: serial {serial:.1f} s (stages "
                  f"{stage_seconds(serial_out):.1f} s), --ray local {on_ray:.1f} s (stages "
                  f"{stage_seconds(ray_out):.1f} s; the wall time includes the cluster's start-up)")  # fmt: skip
            overhead = on_ray / serial
            print(f"overhead ratio (ray / serial wall time): {overhead:.2f}")
        if args.base_rate and args.hyper_rate:
            base_split = (1 / args.base_rate, 0.0)
            hyper_split = (1 / args.hyper_rate, 0.0)
            source = "given on the command line"
        else:
            if args.plan_only:
                sys.exit("--plan-only needs --base-rate and --hyper-rate (env steps/s on 2 cores)")
            base_split = ppo_costs("ResDexBase", args.n_envs, args.measure_steps,
                                   {"object_set": "embedded-small", "data_dir": str(data), "split": "train"})
            hyper_split = ppo_costs("ResDexHyper", args.n_envs, args.measure_steps,
                                    {"object_set": "embedded-small", "data_dir": str(data), "split": "train",
                                     "base_models": [str(serial_out / "base-0"), str(serial_out / "base-1")],
                                     "shape_codes": str(serial_out / "shape" / "codes.json")})  # fmt: skip
            source = (f"measured here: PPO, paper widths, {args.n_envs} envs, {args.measure_steps:,} steps, one torch "
                      "thread; the hyper-policy over the smoke run's 2 small bases (the paper's 4 wide bases cost "
                      "more)")
    base_s, hyper_s = sum(base_split), sum(hyper_split)
    print(f"\nper-step costs ({source}):")
    print(f"  base  {1 / base_s:,.0f} env steps/s (rollout {base_split[0] * 1e6:.0f} us, update "
          f"{base_split[1] * 1e6:.0f} us per step)")  # fmt: skip
    print(f"  hyper {1 / hyper_s:,.0f} env steps/s (rollout {hyper_split[0] * 1e6:.0f} us, update "
          f"{hyper_split[1] * 1e6:.0f} us per step)")  # fmt: skip
    jobs = paper_jobs(base_s, hyper_s)
    steps = sum(j[3] for j in jobs)
    machine_hours = sum(j[1] for j in jobs)
    print(f"\npaper preset (worst case: first bases pass at their cap): {len(jobs)} training jobs, {steps / 1e9:.2f} B "
          f"env steps, {2 * machine_hours:,.0f} core-hours ({machine_hours:,.0f} h of one 2-core machine)")  # fmt: skip
    graph = [(n, h, d) for n, h, d, _ in jobs]
    critical = schedule(graph, len(jobs))
    for n in args.machines:
        print(f"  on {n:>4} machines of 2 cores: {schedule(graph, n):>10,.0f} h wall ({schedule(graph, n) / 24:,.1f} "
              f"days); the critical path alone is {critical:,.0f} h")  # fmt: skip

    def gpu_step_seconds(split: tuple[float, float]) -> float:
        return split[0] * 2 / args.cores_per_gpu + split[1] / args.gpu_update_speedup

    scale = {}  # GPU time per step / 2-core time per step, per job
    for n, *_ in jobs:
        split = base_split if n.startswith("base") else hyper_split
        scale[n] = gpu_step_seconds(split) / sum(split)
    gpu_graph = [(n, h * scale[n], d) for n, h, d in graph]
    for m in args.gpus:
        wall = schedule(gpu_graph, m)
        print(f"  on {m:>4} GPUs ({args.cores_per_gpu} cores each for physics, update {args.gpu_update_speedup:g}x): "
              f"{wall:>10,.0f} h wall ({wall / 24:,.1f} days)")  # fmt: skip
    if overhead is not None:
        print(f"ratio: {overhead:.2f}")


if __name__ == "__main__":
    main()
