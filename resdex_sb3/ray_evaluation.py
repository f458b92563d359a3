"""Evaluation of one run on one split, sharded by objects over a Ray cluster
(``python -m resdex_sb3.evaluate --model RUN --split S --ray [auto|local|ADDRESS]``).

``run_evaluation.evaluate_run`` simulates the split's objects in chunks of ``max_envs // trials`` objects, and
seeds the envs of a chunk from the chunk's first object (``EVAL_SEED + start * trials``). A shard here is a run of
whole chunks, evaluated by ``evaluate_run(..., object_range=...)`` with the very same chunks and seeds, so the
per-object results of the shards, concatenated in order, are the serial evaluation's, bit for bit, and so is the
JSON built from them. More shards than chunks are not possible without changing the batches (hence, in floating
point, the results); lower ``--max-envs`` for more, smaller chunks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from resdex_sb3.evaluation import SplitResult
from resdex_sb3.run_evaluation import chunk_starts, evaluate_run, split_objects

EVAL_RETRIES = 3


def shard_ranges(num_objects: int, trials: int, max_envs: int, shards: int) -> list[tuple[int, int]]:
    """At most ``shards`` contiguous object ranges made of whole chunks, as even as the chunks allow.

    :param num_objects: objects in the split.
    :param trials: episodes per object.
    :param max_envs: envs simulated at once (decides the chunks).
    :param shards: the most ranges wanted (at least one).
    """
    starts = chunk_starts(num_objects, trials, max_envs)
    groups = np.array_split(np.arange(len(starts)), max(1, min(shards, len(starts))))
    bounds = [*starts, num_objects]
    return [(bounds[g[0]], bounds[g[-1] + 1]) for g in groups if len(g)]


#: The per-object fields of ``SplitResult`` (lists or arrays over objects) that :func:`merge` concatenates.
PER_OBJECT_FIELDS = ("objects", "sustained", "success", "held", "categories", "grasp_distance", "weights",
                     "trial_sustained")


def merge(parts: list[SplitResult]) -> SplitResult:
    """The shards' results in order, as one result (every per-object field concatenated; one that a shard lacks
    is None)."""

    def joined(name: str) -> list | np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return [x for v in values for x in v] if isinstance(values[0], list) else np.concatenate(values)

    return replace(parts[0], **{name: joined(name) for name in PER_OBJECT_FIELDS})


def evaluate_sharded(run: str | Path, split: str, trials: int, data_dir: str | None, max_envs: int,
                     video: Path | None = None, shards: int | None = None,
                     physics: Mapping[str, str] | None = None) -> SplitResult:  # fmt: skip
    """``evaluate_run`` on a connected Ray cluster: one task (one CPU, retried if its worker dies) per shard.

    :param run: run folder or model zip (on the shared filesystem).
    :param split: as ``evaluate_run``'s.
    :param trials: episodes per object.
    :param data_dir: object data directory (None: the run's, else ``$RESDEX_DATA``, forwarded to the workers).
    :param max_envs: envs simulated at once; decides the chunks, hence the seeds (as serially).
    :param video: GIF of the first env's episode (written by the first shard).
    :param shards: the most shards (default: the cluster's CPUs).
    :param physics: as ``evaluate_run``'s (the run's own backend and device when None).
    """
    import ray

    _, _, _, objects = split_objects(run, split, data_dir, physics=physics)
    if shards is None:
        shards = max(1, int(ray.cluster_resources().get("CPU", 1)))
    task = ray.remote(num_cpus=1, max_retries=EVAL_RETRIES)(evaluate_run)
    ranges = shard_ranges(len(objects), trials, max_envs, shards)
    print(f"[ray] {len(objects)} objects in {len(ranges)} shards: {ranges}")
    refs = [task.remote(str(run), split, trials, data_dir, max_envs, video if begin == 0 else None,
                        object_range=(begin, end), physics=physics) for begin, end in ranges]  # fmt: skip
    return merge(ray.get(refs))

