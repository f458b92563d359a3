"""``python -m resdex_sb3.evaluate --model RUN --split train|unseen_obj|unseen_cat|all|SET [--trials N]``
``python -m resdex_sb3.evaluate --compare A.json B.json``.

Loads the run with ``PPO.load`` (its best checkpoint ``best/`` when it has one, else its final model; frozen
base policies and normalisation stats from the run folder; a ``.zip`` path loads that model), or a vision
student run of ``resdex_sb3.distill`` with ``VisionStudentPolicy.load`` (its env rebuilt with the privileged part
zeroed, so nothing but hand state and point cloud reaches the policy), and applies
the protocol of ``resdex_sb3.evaluation``: ``--trials`` episodes per object from fixed seeds, started together
(``random_initial_progress`` off), deterministic actions; per object the sustained success (the headline: at the
goal for ``sustain_steps`` consecutive steps), any-time success (the paper's) and held-at-end success; the split's
mean over objects with a 95 % Wilson interval over objects. ``--split SET`` (an object set name, e.g. an imported
one) evaluates all its objects. ``--backend mujoco|warp`` (and ``--device``) evaluates on another physics backend
than the run trained on. Writes ``--json`` (split, backend, sustained, sustained_ci95, success, ci95, held,
held_ci95, grasp_distance, weights, objects; per object: object, category, sustained, success, held,
grasp_distance, weights) and ``--csv`` (one row per object: object, category, sustained, success, held,
grasp_distance). ``grasp_distance`` is the paper's grasp-pose quality D = -sum_t r_proposal of an episode, averaged
over the trials whose object has a grasp proposal (null without); ``weights`` the mean softmax mixing weight of each
base of a hyper-policy (null for other policies). ``--gifs DIR`` re-runs the first trial with a sustained success
and the first without, each alone from its evaluation seed, and writes ``DIR/success.gif``, ``DIR/failure.gif``
and ``DIR/gifs.json`` (which object and trial each shows, and the re-run's own outcome).

``--compare A.json B.json`` reads two such JSONs of the same objects (evaluated with the same ``--trials``, hence
the same seeds) and prints the mean per-object difference A - B of each metric with its 95 % paired t-interval
over objects.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path
from typing import Any

import envs  # noqa: F401  (headless GL default)
from envs.config import BACKENDS
from envs.files import atomic_write_bytes, atomic_write_json
from resdex_sb3.errors import cli_main, positive_int
from resdex_sb3.evaluation import METRICS
from resdex_sb3.run_evaluation import evaluate_run, paired_metrics, result_json, write_gifs


def compare(path_a: Path, path_b: Path) -> list[str]:
    """Lines of the paired per-object difference A - B of each metric between two ``--json`` summaries."""
    count, paired = paired_metrics(path_a, path_b)
    lines = [f"A = {path_a}", f"B = {path_b}", f"{count} objects, paired per object; A - B, 95 % t-interval"]
    for metric, label in zip(METRICS, ("sustained", "any-time", "held")):
        a, b, mean, low, high = paired[metric]
        lines.append(f"{label:>9}  A {100 * a:5.1f} %  B {100 * b:5.1f} %  A-B {100 * mean:+6.1f} "
                     f"points (95 % CI {100 * low:+.1f} .. {100 * high:+.1f})")  # fmt: skip
    return lines


def _percent(mean: float, ci: tuple[float, float]) -> str:
    return f"{100 * mean:.1f} % (95 % CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f})"


def _evaluate_on_ray(args: argparse.Namespace, physics: dict[str, str]) -> Any:
    """The evaluation sharded by objects over the Ray cluster ``--ray`` names (``resdex_sb3.ray_evaluation``)."""
    from resdex_sb3.ray_cluster import RayCluster
    from resdex_sb3.ray_evaluation import evaluate_sharded
    from resdex_sb3.ray_pipeline import joined, resolve_data_dir

    RayCluster.check_address(args.ray)  # before anything is loaded; a RayClusterError is a one-line user error
    run = Path(args.model).expanduser().resolve()
    if not run.exists():
        raise FileNotFoundError(f"run {args.model} does not exist")
    data_dir = str(Path(args.data_dir).expanduser().resolve()) if args.data_dir else None
    shared = resolve_data_dir(data_dir)
    folders = {"the run folder": run if run.is_dir() else run.parent, "the object data directory": shared}
    with joined(args.ray, folders, shared):
        video = args.video.expanduser().resolve() if args.video else None  # written by a worker: no relative path
        result = evaluate_sharded(run, args.split, args.trials, data_dir, args.max_envs, video, args.ray_shards,
                                  physics)  # fmt: skip
    if args.gifs is not None:  # two episodes: here, after the merge
        write_gifs(run, args.split, result, args.gifs, data_dir, physics=physics)
    return result


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", help="run folder (or model zip inside one)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="print the paired per-object difference A - B of two --json summaries, and exit")
    parser.add_argument("--split", default="train", help="train | unseen_obj | unseen_cat | all | <object set>")
    parser.add_argument("--trials", type=positive_int, default=10, help="episodes per object")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the summary and per-object results here")
    parser.add_argument("--csv", type=Path, default=None, help="write one row per object here")
    parser.add_argument("--video", type=Path, default=None, help="write a GIF of the first env's episode")
    parser.add_argument("--gifs", type=Path, default=None, metavar="DIR",
                        help="write DIR/success.gif and DIR/failure.gif (the first trial with a sustained success and "
                             "the first without, re-run alone) and DIR/gifs.json saying which")  # fmt: skip
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="physics backend to evaluate on (default: the run's own)")
    parser.add_argument("--device", default=None, help="warp device for --backend warp (default: CUDA when present)")
    parser.add_argument("--max-envs", type=positive_int, default=1024, help="envs simulated at once")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                        help="shard the split's objects over a Ray cluster (local, auto: the default of a bare --ray, "
                             "or HOST:PORT) and merge: the same JSON as without it")  # fmt: skip
    parser.add_argument("--ray-shards", type=positive_int, default=None, metavar="N",
                        help="the most shards (default: the cluster's CPUs; at most one per chunk of "
                             "max-envs/trials objects)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.compare:
        print("\n".join(compare(*args.compare)))
        return 0
    if args.model is None:
        parser.error("--model (or --compare) is required")
    physics = {name: value for name, value in (("backend", args.backend), ("device", args.device)) if value}
    if args.ray is not None:  # Ray is imported only here
        result = _evaluate_on_ray(args, physics)
    else:
        result = evaluate_run(args.model, args.split, args.trials, args.data_dir, args.max_envs, args.video,
                              gifs=args.gifs, physics=physics)  # fmt: skip
    print(f"{args.model}  split={args.split}  objects={len(result.objects)}  trials={args.trials}  "
          f"backend={result.backend}")
    print(f"sustained {_percent(result.mean_sustained, result.sustained_ci95)}   "
          f"any-time {_percent(result.mean_success, result.ci95)}   "
          f"held at end {_percent(result.mean_held, result.held_ci95)}")  # fmt: skip
    summary = result_json(result, args.split, str(args.model))
    if args.json:
        atomic_write_json(args.json, summary)
    if args.csv:
        table = io.StringIO(newline="")
        writer = csv.DictWriter(table, fieldnames=["object", "category", *METRICS, "grasp_distance"],
                                extrasaction="ignore")  # fmt: skip
        writer.writeheader()
        writer.writerows(summary["objects"])
        atomic_write_bytes(args.csv, table.getvalue().encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
