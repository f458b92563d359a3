"""Evaluating saved runs: one run on one split with the protocol of ``resdex_sb3.evaluation``, its JSON summary,
and the paired comparison of two summaries. The library behind ``python -m resdex_sb3.evaluate``, the pipeline
and the demo."""

from __future__ import annotations

import io
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from envs.files import atomic_write_bytes
from envs.objects.catalog import available_sets, load_object_set
from envs.objects.spec import SPLITS
from resdex_sb3.env_builder import EVALUATION_OPTIONS, build_env, object_set_name, split_env_kwargs
from resdex_sb3.evaluation import EVAL_SEED, METRICS, SplitResult, paired_difference, per_object, run_episodes
from resdex_sb3.run_folder import SavedRun, load_run, warn_other_data


def evaluate_run(run_path: str | Path, split: str, trials: int = 10, data_dir: str | None = None,
                 max_envs: int = 1024, video: Path | None = None, only: list[str] | None = None,
                 object_range: tuple[int, int] | None = None) -> SplitResult:  # fmt: skip
    """Evaluate a saved run on a split (or a whole object set) with the fixed protocol; ``only`` keeps the
    named objects of the split.

    ``object_range=(begin, end)`` evaluates only objects ``begin:end`` of that list, exactly as the whole
    evaluation does (same chunks of ``max_envs // trials`` objects, same seeds), so that the per-object results
    of shards starting at chunk boundaries (:func:`chunk_starts`) concatenate into the whole evaluation's
    (``resdex_sb3.ray_evaluation``)."""
    run, set_name, objset, objects = split_objects(run_path, split, data_dir, only)
    model = load_model(run)
    per_chunk = max(1, max_envs // trials)
    begin, end = object_range if object_range is not None else (0, len(objects))
    if begin % per_chunk or not 0 <= begin < end <= len(objects):
        raise ValueError(f"object range {begin}:{end} of {len(objects)} objects does not start at a chunk of "
                         f"{per_chunk} objects")  # fmt: skip
    names: list[str] = []
    outcomes: list[tuple[np.ndarray, ...]] = []
    for start in range(begin, end, per_chunk):
        chunk = objects[start : min(start + per_chunk, end)]
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
    result = per_object(names, *(np.concatenate(per_metric) for per_metric in zip(*outcomes)), trials)
    return replace(result, object_set_checksum=objset.checksum)


def split_objects(run_path: str | Path, split: str, data_dir: str | None = None, only: list[str] | None = None
                  ) -> tuple[SavedRun, str, Any, list[Any]]:  # fmt: skip
    """The saved run, the object set's name, the set, and the objects :func:`evaluate_run` evaluates (in its order).

    :param run_path: run folder or model zip.
    :param split: a split name, ``all``, or another object set's name (all its objects).
    :param data_dir: the object data directory (default: the run's, else ``$RESDEX_DATA`` or ``data/``).
    :param only: keep these objects of the split.
    """
    run = load_run(run_path)
    options, _ = split_env_kwargs(run.env_kwargs)
    set_name, split_name = object_set_name(options), split
    if split not in SPLITS and split != "all":
        if split not in available_sets(data_dir):
            raise ValueError(f"--split {split!r} is neither a split {SPLITS} nor an object set {available_sets(data_dir)}")
        set_name, split_name = split, "all"
    objset = load_object_set(set_name, data_dir or options.get("data_dir"))
    if set_name == object_set_name(options):  # the set it trained on: is it the same data?
        warn_other_data(run.root, run.object_set_checksum, objset)
    objects = objset.objects if split_name == "all" else objset.split(split_name)
    if only is not None:
        objects = [o for o in objects if o.name in set(only)]
    if not objects:
        raise ValueError(f"set {set_name!r} has no objects in split {split_name!r}")
    return run, set_name, objset, objects


def chunk_starts(num_objects: int, trials: int, max_envs: int = 1024) -> list[int]:
    """Where :func:`evaluate_run`'s chunks of objects start (each chunk is one batch of envs)."""
    return list(range(0, num_objects, max(1, max_envs // trials)))


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
        "object_set_checksum": result.object_set_checksum,
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


def _per_object_table(path: Path) -> dict[str, dict[str, float]]:
    """object -> {metric: rate} of one ``--json`` summary."""
    try:
        rows = json.loads(Path(path).read_text())["objects"]
        return {row["object"]: {m: float(row[m]) for m in METRICS} for row in rows}
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path} is not a resdex_sb3.evaluate --json summary with per-object "
                         f"{'/'.join(METRICS)} ({type(err).__name__}: {err})") from err  # fmt: skip
