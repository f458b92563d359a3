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
one) evaluates all its objects. Writes ``--json`` (split, sustained, sustained_ci95, success, ci95, held,
held_ci95, objects) and ``--csv`` (one row per object: object, sustained, success, held).

``--compare A.json B.json`` reads two such JSONs of the same objects (evaluated with the same ``--trials``, hence
the same seeds) and prints the mean per-object difference A - B of each metric with its 95 % paired t-interval
over objects.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (headless GL default)
from envs.objects.catalog import SPLITS, available_sets, load_object_set
from envs.objects.store import atomic_write_bytes, atomic_write_json
from resdex_sb3.env_builder import EVALUATION_OPTIONS, build_env, split_env_kwargs
from resdex_sb3.evaluation import METRICS, SplitResult, paired_difference, per_object, run_episodes
from resdex_sb3.run_folder import SavedRun, load_run

EVAL_SEED = 1_000_000


def evaluate_run(run_path: str | Path, split: str, trials: int = 10, data_dir: str | None = None,
                 max_envs: int = 1024, video: Path | None = None, only: list[str] | None = None) -> SplitResult:  # fmt: skip
    """Evaluate a saved run on a split (or a whole object set) with the fixed protocol; ``only`` keeps the
    named objects of the split."""
    run = load_run(run_path)
    options, _ = split_env_kwargs(run.env_kwargs)
    set_name, split_name = options.get("object_set", "embedded"), split
    if split not in SPLITS and split != "all":
        if split not in available_sets(data_dir):
            raise ValueError(f"--split {split!r} is neither a split {SPLITS} nor an object set {available_sets(data_dir)}")
        set_name, split_name = split, "all"
    objset = load_object_set(set_name, data_dir or options.get("data_dir"))
    objects = objset.objects if split_name == "all" else objset.split(split_name)
    if only is not None:
        objects = [o for o in objects if o.name in set(only)]
    if not objects:
        raise ValueError(f"set {set_name!r} has no objects in split {split_name!r}")
    model = load_model(run)
    per_chunk = max(1, max_envs // trials)
    names: list[str] = []
    outcomes: list[tuple[np.ndarray, ...]] = []
    for start in range(0, len(objects), per_chunk):
        chunk = objects[start : start + per_chunk]
        kwargs = {**run.env_kwargs, "object_set": set_name, "split": "all", "objects": [o.name for o in chunk],
                  **EVALUATION_OPTIONS}  # fmt: skip
        if data_dir:
            kwargs["data_dir"] = data_dir
        env = build_env(run.env_id, len(chunk) * trials, EVAL_SEED + start * trials, kwargs, root=run.root,
                        object_set=objset)  # fmt: skip
        if run.stats_path is not None:
            env = VecNormalize.load(str(run.stats_path), env)
            env.training, env.norm_reward = False, False
        frames: list[np.ndarray] = []
        on_step = _recorder(frames) if video is not None and start == 0 else None
        outcomes.append(run_episodes(env, lambda obs: model.predict(obs, deterministic=True)[0],
                                     env.get_attr("config")[0].episode_length, on_step))  # fmt: skip
        names += [o.name for o in env.get_attr("objects")]
        env.close()
        if frames:
            _save_gif(frames, video)
    return per_object(names, *(np.concatenate(per_metric) for per_metric in zip(*outcomes)), trials)


def load_model(run: SavedRun) -> Any:
    """The run's policy, anything with SB3's ``predict``: a PPO model, or the student of a DAgger run."""
    if run.hyperparams.get("algo") == "dagger":
        from resdex_sb3.policies import VisionStudentPolicy

        return VisionStudentPolicy.load(str(run.model_path), device="cpu")
    return PPO.load(run.model_path, device="cpu")


def _recorder(frames: list[np.ndarray]):
    from envs.render import RenderUnavailableError

    def record(env: Any, step: int) -> None:
        if step % 2 == 0:
            try:
                frames.append(env.render())
            except RenderUnavailableError as err:
                print(f"(no video: {err})", file=sys.stderr)

    return record


def _save_gif(frames: list[np.ndarray], path: Path) -> None:
    import io

    from PIL import Image

    images = [Image.fromarray(f) for f in frames if f is not None]
    if not images:
        return
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=33, loop=0)
    atomic_write_bytes(Path(path), buffer.getvalue())
    print(f"video: {path}")


def result_json(result: SplitResult, split: str, run: str) -> dict[str, Any]:
    return {
        "model": run, "split": split, "trials": result.trials, "num_objects": len(result.objects),
        "sustained": result.mean_sustained, "sustained_ci95": list(result.sustained_ci95),
        "success": result.mean_success, "ci95": list(result.ci95),
        "held": result.mean_held, "held_ci95": list(result.held_ci95),
        "objects": [{"object": n, "sustained": float(u), "success": float(s), "held": float(h)}
                    for n, u, s, h in zip(result.objects, result.sustained, result.success, result.held)],
    }  # fmt: skip


def paired_metrics(path_a: Path, path_b: Path) -> tuple[int, dict[str, tuple[float, ...]]]:
    """Two ``--json`` summaries paired by object: the number of objects and, per metric, (mean of A, mean of B,
    mean difference A - B, its 95 % interval low, high)."""
    tables = [_per_object_table(path) for path in (path_a, path_b)]
    only_a, only_b = sorted(set(tables[0]) - set(tables[1])), sorted(set(tables[1]) - set(tables[0]))
    if only_a or only_b:
        raise ValueError(f"{path_b} evaluates other objects than {path_a} ({len(only_a)} only in A, "
                         f"{len(only_b)} only in B, e.g. {(only_a + only_b)[0]!r}); --compare pairs them by object")
    objects = sorted(tables[0])
    paired = {}
    for metric in METRICS:
        a, b = (np.array([table[o][metric] for o in objects]) for table in tables)
        paired[metric] = (float(a.mean()), float(b.mean()), *paired_difference(a, b))
    return len(objects), paired


def compare(path_a: Path, path_b: Path) -> list[str]:
    """Lines of the paired per-object difference A - B of each metric between two ``--json`` summaries."""
    count, paired = paired_metrics(path_a, path_b)
    lines = [f"A = {path_a}", f"B = {path_b}", f"{count} objects, paired per object; A - B, 95 % t-interval"]
    for metric, label in zip(METRICS, ("sustained", "any-time", "held")):
        a, b, mean, low, high = paired[metric]
        lines.append(f"{label:>9}  A {100 * a:5.1f} %  B {100 * b:5.1f} %  A-B {100 * mean:+6.1f} "
                     f"points (95 % CI {100 * low:+.1f} .. {100 * high:+.1f})")  # fmt: skip
    return lines


def _per_object_table(path: Path) -> dict[str, dict[str, float]]:
    """object -> {metric: rate} of one ``--json`` summary."""
    try:
        rows = json.loads(Path(path).read_text())["objects"]
        return {row["object"]: {m: float(row[m]) for m in METRICS} for row in rows}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a resdex_sb3.evaluate --json summary with per-object "
                         f"{'/'.join(METRICS)} ({type(err).__name__}: {err})") from err  # fmt: skip


def _percent(mean: float, ci: tuple[float, float]) -> str:
    return f"{100 * mean:.1f} % (95 % CI {100 * ci[0]:.1f}-{100 * ci[1]:.1f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", help="run folder (or model zip inside one)")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A.json", "B.json"),
                        help="print the paired per-object difference A - B of two --json summaries, and exit")
    parser.add_argument("--split", default="train", help="train | unseen_obj | unseen_cat | all | <object set>")
    parser.add_argument("--trials", type=int, default=10, help="episodes per object")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the summary and per-object results here")
    parser.add_argument("--csv", type=Path, default=None, help="write one row per object here")
    parser.add_argument("--video", type=Path, default=None, help="write a GIF of the first env's episode")
    parser.add_argument("--max-envs", type=int, default=1024, help="envs simulated at once")
    args = parser.parse_args(argv)
    if args.compare:
        try:
            print("\n".join(compare(*args.compare)))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0
    if args.model is None:
        parser.error("--model (or --compare) is required")
    import torch

    torch.set_num_threads(1)  # the physics threads need the cores; see resdex_sb3.train
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    try:
        result = evaluate_run(args.model, args.split, args.trials, args.data_dir, args.max_envs, args.video)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{args.model}  split={args.split}  objects={len(result.objects)}  trials={args.trials}")
    print(f"sustained {_percent(result.mean_sustained, result.sustained_ci95)}   "
          f"any-time {_percent(result.mean_success, result.ci95)}   "
          f"held at end {_percent(result.mean_held, result.held_ci95)}")  # fmt: skip
    summary = result_json(result, args.split, str(args.model))
    if args.json:
        atomic_write_json(args.json, summary)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["object", *METRICS])
            writer.writeheader()
            writer.writerows(summary["objects"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
