"""Evaluating saved runs: one run on one split with the protocol of ``resdex_sb3.evaluation``, its JSON summary,
GIFs of one sustained success and one failure, and the paired comparison of two summaries. The library behind
``python -m resdex_sb3.evaluate``, the pipeline and the demo."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from envs.backends import check_backend_options
from envs.config import DEFAULT_BACKEND
from envs.files import atomic_write_bytes, atomic_write_json
from envs.objects.catalog import available_sets, load_object_set
from envs.objects.spec import SPLITS
from resdex_sb3.env_builder import EVALUATION_OPTIONS, build_env, object_set_name, split_env_kwargs
from resdex_sb3.evaluation import (EVAL_SEED, METRICS, EpisodeOutcomes, SplitResult, paired_difference,
                                   per_object_outcomes, run_episodes)
from resdex_sb3.run_folder import SavedRun, load_run, warn_other_data

#: GIFs of ``--gifs`` are downscaled to at most this width, pixels.
GIF_MAX_WIDTH = 240


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run the block (or the decorated function) with one torch thread, restoring the caller's count after.
    Evaluation runs small policy batches between physics steps, and torch's idle threads spin on the cores the
    physics threads need: on 2 busy cores, one k = 4 hyper-policy evaluation took 19 s with one thread and 97 s
    with two, to identical per-object results."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@one_torch_thread()
def evaluate_run(run_path: str | Path, split: str, trials: int = 10, data_dir: str | None = None,
                 max_envs: int = 1024, video: Path | None = None, only: list[str] | None = None,
                 object_range: tuple[int, int] | None = None, gifs: Path | None = None,
                 physics: Mapping[str, str] | None = None) -> SplitResult:  # fmt: skip
    """Evaluate a saved run on a split (or a whole object set) with the fixed protocol; ``only`` keeps the
    named objects of the split. ``physics`` (``backend``, ``device``) replaces the run's own physics options, so a
    policy trained on one backend can be evaluated on the other; the result names the backend it ran on.

    ``object_range=(begin, end)`` evaluates only objects ``begin:end`` of that list, exactly as the whole
    evaluation does (same chunks of ``max_envs // trials`` objects, same seeds), so that the per-object results
    of shards starting at chunk boundaries (:func:`chunk_starts`) concatenate into the whole evaluation's
    (``resdex_sb3.ray_evaluation``).

    ``gifs``: a folder to write, after the evaluation, ``success.gif`` and ``failure.gif`` (the first trial with a
    sustained success and the first without, each re-run alone) and ``gifs.json`` into (:func:`write_gifs`)."""
    run, set_name, objset, objects = split_objects(run_path, split, data_dir, only, physics)
    model = load_model(run)
    per_chunk = max(1, max_envs // trials)
    begin, end = object_range if object_range is not None else (0, len(objects))
    if begin % per_chunk or not 0 <= begin < end <= len(objects):
        raise ValueError(f"object range {begin}:{end} of {len(objects)} objects does not start at a chunk of "
                         f"{per_chunk} objects")  # fmt: skip
    env_objects: list[Any] = []
    outcomes: list[EpisodeOutcomes] = []
    for start in range(begin, end, per_chunk):
        chunk = objects[start : min(start + per_chunk, end)]
        env = evaluation_env(run, set_name, objset, chunk, trials, EVAL_SEED + start * trials, data_dir)
        frames: list[np.ndarray] = []
        on_step = _recorder(frames) if video is not None and start == 0 else None
        outcomes.append(run_episodes(env, _deterministic(model), env.get_attr("config")[0].episode_length, on_step))
        env_objects += env.get_attr("objects")
        env.close()
        if frames:
            _save_gif(frames, video)
    result = replace(per_object_outcomes(env_objects, EpisodeOutcomes.concatenate(outcomes), trials),
                     object_set_checksum=objset.checksum, backend=run.env_kwargs.get("backend", DEFAULT_BACKEND))  # fmt: skip
    if gifs is not None:
        _write_gifs(run, model, set_name, objset, objects, result, Path(gifs), data_dir)
    return result


def evaluation_env(run: SavedRun, set_name: str, objset: Any, objects: list[Any], trials: int, seed: int,
                   data_dir: str | None = None) -> Any:  # fmt: skip
    """The env :func:`evaluate_run` evaluates ``objects`` in: ``trials`` envs per object (in blocks), env ``i``
    seeded ``seed + i``, the run's normalisation statistics loaded (frozen).

    :param run: the saved run.
    :param set_name: the object set's name; ``objset`` the set itself.
    :param objects: the objects (specs) to evaluate, in order.
    :param trials: envs per object.
    :param seed: seed of the first env.
    :param data_dir: the object data directory, when not the run's.
    """
    kwargs = {**run.env_kwargs, "object_set": set_name, "split": "all", "objects": [o.name for o in objects],
              **EVALUATION_OPTIONS}  # fmt: skip
    if data_dir:
        kwargs["data_dir"] = data_dir
    env = build_env(run.env_id, len(objects) * trials, seed, kwargs, root=run.root, object_set=objset)
    if run.stats_path is not None:
        env = VecNormalize.load(str(run.stats_path), env)
        env.training, env.norm_reward = False, False
    return env


def trial_seed(object_index: int, trial: int, trials: int) -> int:
    """The env seed :func:`evaluate_run` gives trial ``trial`` of the ``object_index``-th object of its list: a chunk
    starting at object ``start`` is seeded ``EVAL_SEED + start * trials``, its env ``i`` gets that ``+ i``, and an
    object's ``trials`` envs are one block; so the seed does not depend on the chunking (``max_envs``)."""
    return EVAL_SEED + object_index * trials + trial


def write_gifs(run_path: str | Path, split: str, result: SplitResult, folder: Path, data_dir: str | None = None,
               only: list[str] | None = None, physics: Mapping[str, str] | None = None) -> None:  # fmt: skip
    """``success.gif``, ``failure.gif`` and ``gifs.json`` of an evaluation of ``run_path`` on ``split`` (what
    ``evaluate_run(..., gifs=folder)`` writes; for results merged from shards).

    :param run_path: the evaluated run folder or model zip.
    :param split: the split it was evaluated on; ``data_dir``, ``only`` and ``physics`` as given to ``evaluate_run``.
    :param result: the evaluation's result (with ``trial_sustained``).
    :param folder: where the files go.
    """
    run, set_name, objset, objects = split_objects(run_path, split, data_dir, only, physics)
    _write_gifs(run, load_model(run), set_name, objset, objects, result, Path(folder), data_dir)


def _write_gifs(run: SavedRun, model: Any, set_name: str, objset: Any, objects: list[Any], result: SplitResult,
                folder: Path, data_dir: str | None) -> None:  # fmt: skip
    """Re-run the first trial with a sustained success and the first without, each alone in a 1-env env from the
    seed it had in the evaluation, render them to ``folder/success.gif`` and ``folder/failure.gif``, and say in
    ``folder/gifs.json`` which object and trial each shows and whether the re-run had the same outcome (a policy
    run on a batch of one may round differently, and the episode then differ)."""
    if result.trial_sustained is None:
        raise ValueError("the evaluation result has no per-trial outcomes to choose GIFs from")
    from envs.render import RenderUnavailableError

    folder.mkdir(parents=True, exist_ok=True)
    index_of = {o.name: i for i, o in enumerate(objects)}
    flat = result.trial_sustained.reshape(-1)
    wanted = {"success": True, "failure": False}
    rendering = "ok"
    shown: dict[str, Any] = {}
    for label, sustained in wanted.items():
        (folder / f"{label}.gif").unlink(missing_ok=True)  # an earlier evaluation's
        matches = np.flatnonzero(flat == sustained)
        if not len(matches):
            reason = "no trial was a sustained success" if sustained else "every trial was a sustained success"
            shown[label] = {"file": None, "skipped": reason}
            continue
        object_row, trial = divmod(int(matches[0]), result.trials)
        name = result.objects[object_row]
        seed = trial_seed(index_of[name], trial, result.trials)
        entry: dict[str, Any] = {
            "object": name, "category": result.categories[object_row] if result.categories else None,
            "trial": trial, "seed": seed, "evaluated_sustained": sustained, "rerun_sustained": None,
            "rerun_matches": None, "file": None,
        }  # fmt: skip
        if rendering == "ok":
            try:
                rerun, written = _rerun_trial(run, model, set_name, objset, objects[index_of[name]], seed, data_dir,
                                              folder / f"{label}.gif")  # fmt: skip
            except RenderUnavailableError as err:
                rendering = f"unavailable: {err}"
                print(f"no GIFs: {err}", file=sys.stderr)
            else:
                entry.update(rerun_sustained=rerun, rerun_matches=rerun == sustained,
                             file=f"{label}.gif" if written else None)  # fmt: skip
        shown[label] = entry
    atomic_write_json(folder / "gifs.json", {"model": str(run.model_path), "rendering": rendering, **shown})


def _rerun_trial(run: SavedRun, model: Any, set_name: str, objset: Any, obj: Any, seed: int, data_dir: str | None,
                 path: Path) -> tuple[bool, bool]:  # fmt: skip
    """One episode of ``obj`` alone from env seed ``seed``, rendered to the GIF ``path`` (every second step,
    ``GIF_MAX_WIDTH`` pixels wide): whether it was a sustained success, and whether the GIF was written (it has
    frames). Raises ``RenderUnavailableError`` before simulating anything when there is no offscreen rendering."""
    env = evaluation_env(run, set_name, objset, [obj], 1, seed, data_dir)
    env.unwrapped.render_size = (GIF_MAX_WIDTH * 3 // 4, GIF_MAX_WIDTH)  # rendered at the GIF's size, not downscaled
    try:
        env.render()  # fails fast without an OpenGL context
        length = env.get_attr("config")[0].episode_length
        frames: list[np.ndarray] = []
        record = _recorder(frames)

        def on_step(venv: Any, step: int) -> None:  # the last step's frame would show the next episode's start
            if step < length - 1:
                record(venv, step)

        outcome = run_episodes(env, _deterministic(model), length, on_step, seed=seed)
    finally:
        env.close()
    return bool(outcome.sustained[0]), _save_gif(frames, path, GIF_MAX_WIDTH)


def _deterministic(model: Any) -> Any:
    """The batched action function of ``model``'s deterministic policy."""
    return lambda obs: model.predict(obs, deterministic=True)[0]


def split_objects(run_path: str | Path, split: str, data_dir: str | None = None, only: list[str] | None = None,
                  physics: Mapping[str, str] | None = None) -> tuple[SavedRun, str, Any, list[Any]]:  # fmt: skip
    """The saved run, the object set's name, the set, and the objects :func:`evaluate_run` evaluates (in its order).

    :param run_path: run folder or model zip.
    :param split: a split name, ``all``, or another object set's name (all its objects).
    :param data_dir: the object data directory (default: the run's, else ``$RESDEX_DATA`` or ``data/``).
    :param only: keep these objects of the split.
    :param physics: ``backend`` and ``device`` to use instead of the run's (the returned run carries them).
    """
    run = with_physics(load_run(run_path), physics)
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
        in_split = [o for o in objects if o.name in set(only)]
        if not in_split and objects:
            raise ValueError(f"none of the objects {sorted(only)} is in split {split_name!r} of set {set_name!r}")
        objects = in_split
    if not objects:
        raise ValueError(f"set {set_name!r} has no objects in split {split_name!r}")
    return run, set_name, objset, objects


def with_physics(run: SavedRun, physics: Mapping[str, str] | None) -> SavedRun:
    """``run`` with its env options' ``backend`` and ``device`` replaced by ``physics``: a device given alone keeps
    the run's backend, a backend given alone drops the run's device; the combination is checked before anything
    is built."""
    if not physics:
        return run
    kwargs = run.env_kwargs
    if "backend" in physics and "device" not in physics:
        kwargs.pop("device", None)
    kwargs.update(physics)
    check_backend_options(kwargs.get("backend", DEFAULT_BACKEND), kwargs.get("device"))
    return replace(run, hyperparams={**run.hyperparams, "env_kwargs": kwargs})


def chunk_starts(num_objects: int, trials: int, max_envs: int = 1024) -> list[int]:
    """Where :func:`evaluate_run`'s chunks of objects start (each chunk is one batch of envs)."""
    return list(range(0, num_objects, max(1, max_envs // trials)))


def load_model(run: SavedRun) -> Any:
    """The run's policy, anything with SB3's ``predict``: the model of a training run, loaded with the algorithm
    that trained it (``SavedRun.algo``: PPO, sb3-contrib's TRPO ...), or the student of a DAgger run."""
    if run.algo == "dagger":
        from resdex_sb3.policies import VisionStudentPolicy

        return VisionStudentPolicy.load(str(run.model_path), device="cpu")
    if run.algo == "ppo":
        return PPO.load(run.model_path, device="cpu")
    from resdex_sb3.run_folder import load_algorithm

    return load_algorithm(run.model_path, run.algo, device="cpu")


def _recorder(frames: list[np.ndarray]):
    from envs.render import RenderUnavailableError

    def record(env: Any, step: int) -> None:
        if step % 2 == 0:
            try:
                frames.append(env.render())
            except RenderUnavailableError as err:
                print(f"(no video: {err})", file=sys.stderr)

    return record


def _save_gif(frames: list[np.ndarray], path: Path, max_width: int | None = None) -> bool:
    """Write ``frames`` as a looping GIF, downscaled to ``max_width`` pixels wide when they are wider; whether
    there was a frame to write."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames if f is not None]
    if not images:
        return False
    if max_width is not None and images[0].width > max_width:
        size = (max_width, max(1, round(images[0].height * max_width / images[0].width)))
        images = [image.resize(size, Image.Resampling.BILINEAR) for image in images]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=33, loop=0)
    atomic_write_bytes(Path(path), buffer.getvalue())
    print(f"video: {path}")
    return True


def result_json(result: SplitResult, split: str, run: str) -> dict[str, Any]:
    """The ``--json`` summary: split means with intervals, the mean grasp distance over objects that have one and
    the mean mixing weights over objects (None when not recorded), and one row per object."""
    return {
        "model": run, "split": split, "trials": result.trials, "num_objects": len(result.objects),
        "object_set_checksum": result.object_set_checksum, "backend": result.backend,
        "sustained": result.mean_sustained, "sustained_ci95": list(result.sustained_ci95),
        "success": result.mean_success, "ci95": list(result.ci95),
        "held": result.mean_held, "held_ci95": list(result.held_ci95),
        "grasp_distance": result.mean_grasp_distance, "weights": result.mean_weights,
        "objects": [_object_row(result, i) for i in range(len(result.objects))],
    }  # fmt: skip


def _object_row(result: SplitResult, index: int) -> dict[str, Any]:
    """One object's row of :func:`result_json` (None for what was not recorded)."""
    distance = None if result.grasp_distance is None else float(result.grasp_distance[index])
    return {
        "object": result.objects[index], "category": result.categories[index] if result.categories else None,
        "sustained": float(result.sustained[index]), "success": float(result.success[index]),
        "held": float(result.held[index]),
        "grasp_distance": None if distance is None or np.isnan(distance) else distance,
        "weights": None if result.weights is None else [float(w) for w in result.weights[index]],
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
