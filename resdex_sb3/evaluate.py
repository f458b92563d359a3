"""``python -m resdex_sb3.evaluate --model RUN --split train|unseen_obj|unseen_cat|all|SET [--trials N]``.

Loads the run with ``PPO.load`` (frozen base policies and normalisation stats from the run folder), or a vision
student run of ``resdex_sb3.distill`` with ``VisionStudentPolicy.load`` (its env rebuilt with the privileged part
zeroed, so nothing but hand state and point cloud reaches the policy), and applies
the protocol of ``resdex_sb3.evaluation``: ``--trials`` episodes per object from fixed seeds, deterministic
actions; per-object any-time success and held-at-end success; the split's mean over objects with a 95 %
t-interval over objects. ``--split SET`` (an object set name, e.g. an imported one) evaluates all its objects.
Writes ``--json`` (split, success, ci95, held, held_ci95, objects) and ``--csv`` (one row per object).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import envs  # noqa: F401  (headless GL default)
from envs.objects.catalog import SPLITS, available_sets, load_object_set
from envs.objects.store import atomic_write_bytes, atomic_write_json
from resdex_sb3.env_builder import build_env, split_env_kwargs
from resdex_sb3.evaluation import SplitResult, per_object, run_episodes
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
    success, held = [], []
    for start in range(0, len(objects), per_chunk):
        chunk = objects[start : start + per_chunk]
        kwargs = {**run.env_kwargs, "object_set": set_name, "split": "all", "objects": [o.name for o in chunk]}
        if data_dir:
            kwargs["data_dir"] = data_dir
        env = build_env(run.env_id, len(chunk) * trials, EVAL_SEED + start * trials, kwargs, root=run.root,
                        object_set=objset)  # fmt: skip
        if run.stats_path is not None:
            env = VecNormalize.load(str(run.stats_path), env)
            env.training, env.norm_reward = False, False
        frames: list[np.ndarray] = []
        on_step = _recorder(frames) if video is not None and start == 0 else None
        s, h = run_episodes(env, lambda obs: model.predict(obs, deterministic=True)[0],
                            env.get_attr("config")[0].episode_length, on_step)  # fmt: skip
        names += [o.name for o in env.get_attr("objects")]
        success.append(s)
        held.append(h)
        env.close()
        if frames:
            _save_gif(frames, video)
    return per_object(names, np.concatenate(success), np.concatenate(held), trials)


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
        "success": result.mean_success, "ci95": list(result.ci95),
        "held": result.mean_held, "held_ci95": list(result.held_ci95),
        "objects": [{"object": n, "success": float(s), "held": float(h)}
                    for n, s, h in zip(result.objects, result.success, result.held)],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--model", required=True, help="run folder (or model zip inside one)")
    parser.add_argument("--split", default="train", help="train | unseen_obj | unseen_cat | all | <object set>")
    parser.add_argument("--trials", type=int, default=10, help="episodes per object")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the summary and per-object results here")
    parser.add_argument("--csv", type=Path, default=None, help="write one row per object here")
    parser.add_argument("--video", type=Path, default=None, help="write a GIF of the first env's episode")
    parser.add_argument("--max-envs", type=int, default=1024, help="envs simulated at once")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # the physics threads need the cores; see resdex_sb3.train
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    try:
        result = evaluate_run(args.model, args.split, args.trials, args.data_dir, args.max_envs, args.video)
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    low, high = result.ci95
    print(f"{args.model}  split={args.split}  objects={len(result.objects)}  trials={args.trials}")
    print(f"success {100 * result.mean_success:.1f} %  (95 % CI {100 * low:.1f}-{100 * high:.1f})   "
          f"held at end {100 * result.mean_held:.1f} %")  # fmt: skip
    summary = result_json(result, args.split, str(args.model))
    if args.json:
        atomic_write_json(args.json, summary)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        with open(args.csv, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["object", "success", "held"])
            writer.writeheader()
            writer.writerows(summary["objects"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
