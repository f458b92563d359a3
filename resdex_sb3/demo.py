"""``python -m resdex_sb3.demo`` (``make demo``): the main job on the embedded default set, on a laptop CPU.

1. builds the embedded object set (first run only: surface points and sim-validated grasp proposals);
2. trains one geometry-unaware base policy on a short budget and plots its learning curve;
3. evaluates the shipped ``cpu`` checkpoints (``checkpoints/cpu/``: the residual-MoE hyper-policy, the
   multi-task PPO baseline and, when present, the vision students) on the three splits, prints the results
   table and writes a rollout GIF.

Everything goes to ``--out`` (default ``runs/demo``). ``--base-steps`` and ``--trials`` trade time for precision.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import envs  # noqa: F401  (headless GL default)
from envs.objects.build import build_object_set
from envs.objects.catalog import DEFAULT_SET, load_object_set
from envs.objects.progress import progress_bars
from envs.objects.spec import SPLITS
from resdex_sb3.errors import UserError, cli_main, positive_int
from resdex_sb3.presets import load_pipeline_preset

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "cpu"
POLICIES = (("method (residual MoE)", "hyper"), ("baseline (multi-task PPO)", "baseline"),
            ("vision student, gt_pose", "vision-gt_pose"), ("vision student, camera", "vision-camera"))  # fmt: skip


def train_base(out: Path, steps: int) -> None:
    objset = load_object_set(DEFAULT_SET)
    representative = objset.split("train")[0].name
    clusters = SHIPPED / "shape" / "clusters.json"
    if clusters.exists():
        import json

        representative = json.loads(clusters.read_text())["clusters"][0]["representative"]
    run = out / "base"
    reward = load_pipeline_preset("cpu")["base_reward"]  # what the cpu pipeline trains its bases on
    print(f"\n== 2. training a base policy on {representative} ({reward} reward) for up to {steps:,} env steps; "
          "it stops early once it passes the base gate ==")  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "resdex_sb3.train", "--algo", "ppo", "--env", "ResDexBase",
                           "--preset", "cpu", "--run-dir", str(run), "-tb", str(run / "tb"), "--seed", "0",
                           "-n", str(steps), "--resume", "--log-interval", "10",
                           "--env-kwargs", f"objects:[{representative!r}]", f"reward_mode:{reward!r}"])  # fmt: skip
    if done.returncode:  # train printed its own error above
        raise UserError(f"training the demo's base policy in {run} failed (exit status {done.returncode})")
    from resdex_sb3.curves import plot_runs

    for tag, name in (("eval/sustained_own", "sustained"), ("charts/success_rate", "success"),
                      ("rollout/ep_rew_mean", "return")):  # fmt: skip
        path = plot_runs({"base": run}, tag, out / f"base_{name}_curve.png")
        if path:
            print(f"learning curve ({tag}): {path}")


def evaluate_shipped(out: Path, trials: int) -> None:
    from resdex_sb3.run_evaluation import evaluate_run

    print(f"\n== 3. shipped cpu checkpoints, {trials} trials per object ==")
    rows = []
    for label, folder in POLICIES:
        run = SHIPPED / folder
        if not run.exists():
            print(f"({run} is not shipped yet: skipped)")
            continue
        for split in SPLITS:
            video = out / f"{folder}_{split}.gif" if split == "unseen_cat" else None
            result = evaluate_run(run, split, trials, video=video)
            low, high = result.sustained_ci95
            rows.append(f"| {label} | {split} | {len(result.objects)} | {100 * result.mean_sustained:.1f} "
                        f"({100 * low:.1f}-{100 * high:.1f}) | {100 * result.mean_success:.1f} | "
                        f"{100 * result.mean_held:.1f} |")  # fmt: skip
            print(rows[-1], flush=True)
    table = ["| policy | split | objects | sustained % (95 % CI) | any-time % | held % |", "|---|---|---|---|---|---|",
             *rows]  # fmt: skip
    (out / "results.md").write_text("\n".join(table) + "\n")
    print("\n" + "\n".join(table))
    print(f"\ntable: {out / 'results.md'}")


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--base-steps", type=positive_int, default=2_500_000,
                        help="cap of the base run (the mug's base passed its gate at 1.9M steps, seed 0)")  # fmt: skip
    parser.add_argument("--trials", type=positive_int, default=2)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    print(f"== 1. object set `{DEFAULT_SET}` (built or verified: python -m resdex_sb3.objects build) ==")
    build_object_set(DEFAULT_SET, progress=progress_bars())
    objset = load_object_set(DEFAULT_SET)
    print(f"{len(objset.objects)} objects; share of training objects with a validated grasp proposal: "
          f"{objset.report.get('proposal_share')}")  # fmt: skip
    train_base(args.out, args.base_steps)
    evaluate_shipped(args.out, args.trials)
    print(f"\ndemo finished in {(time.perf_counter() - began) / 60:.1f} min; outputs in {args.out}")


if __name__ == "__main__":
    sys.exit(main())
