"""Grouping the training objects by shape: K-means over their shape codes, one base policy per group (the
library behind ``python -m resdex_sb3.cluster`` and the pipeline's shape stage; that command's docstring gives
the files written)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import KMeans

from envs.files import atomic_write_json
from envs.objects.catalog import DEFAULT_SET, available_sets, load_object_set
from envs.objects.spec import ObjectSpec
from resdex_sb3.shape.codes import CODES_FILE, ENCODER_FILE, TRAIN_SPLIT, ShapeCodes
from resdex_sb3.shape.train_encoder import EncoderTrainConfig

CLUSTERS_FILE = "clusters.json"
CLUSTERS_FORMAT = 1
DEFAULT_OUT_ROOT = Path("runs") / "shape"


def check_k(k: int, num_train: int) -> None:
    """Raise ValueError unless 1 <= k <= the number of training objects."""
    if k < 1 or k > num_train:
        raise ValueError(f"--k {k} is out of range: need 1 <= k <= {num_train}, the number of training objects")


def cluster_codes(codes: ShapeCodes, objects: Sequence[ObjectSpec], k: int, seed: int = 0) -> dict[str, Any]:
    """K-means on the codes of the ``train`` objects: {"inertia", "clusters": [...]} in K-means label order.

    Each cluster lists its members nearest-first, so ``representative`` (the first) is the object to train
    the cluster's base policy on, and the next ones are the fallbacks the reference tries when that fails.
    """
    train = [o for o in objects if o.split == TRAIN_SPLIT]
    check_k(k, len(train))
    # float64, as sklearn would convert anyway; explicit so that distances below use the same values
    x = codes.matrix([o.name for o in train]).astype(np.float64)
    kmeans = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(x)
    clusters = []
    for index in range(k):
        rows = np.flatnonzero(kmeans.labels_ == index)
        if len(rows) == 0:  # only possible when fewer than k codes are distinct
            raise ValueError(f"K-means left cluster {index} empty: the {len(train)} training codes have fewer "
                             f"than k={k} distinct values")  # fmt: skip
        centre = kmeans.cluster_centers_[index]
        distance = np.linalg.norm(x[rows] - centre, axis=1)
        order = np.argsort(distance, kind="stable")  # stable: ties keep set order, so output is reproducible
        members = [
            {"name": train[rows[i]].name, "category": train[rows[i]].category, "distance": round(float(distance[i]), 6)}
            for i in order
        ]
        categories = Counter(m["category"] for m in members)
        clusters.append({
            "index": index,
            "size": len(members),
            "representative": members[0]["name"],
            "categories": dict(sorted(categories.items(), key=lambda item: (-item[1], item[0]))),
            "centre": [round(float(v), 6) for v in centre],
            "members": members,
        })  # fmt: skip
    return {"inertia": round(float(kmeans.inertia_), 6), "clusters": clusters}


def run_clustering(
    k: int,
    set_name: str = DEFAULT_SET,
    data_dir: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    config: EncoderTrainConfig | None = None,
    log: Callable[[str], None] | None = print,
) -> tuple[dict[str, Any], Path]:
    """Load set ``set_name`` (it must be built: ``python -m resdex_sb3.objects build``) and cluster it into ``out_dir`` with :func:`write_clusters`."""
    if k < 1:  # checked before any loading or training, which can take minutes
        raise ValueError(f"--k {k} is out of range: need k >= 1")
    known = available_sets(data_dir)
    if set_name not in known:
        raise ValueError(f"unknown object set {set_name!r}; known sets: {', '.join(known)}")
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT_ROOT / set_name
    objects = load_object_set(set_name, data_dir)
    return write_clusters(out, set_name, objects.objects, objects.points, k, seed, config, log)


def write_clusters(
    out_dir: str | os.PathLike[str],
    set_name: str,
    objects: Sequence[ObjectSpec],
    points: Mapping[str, np.ndarray],
    k: int,
    seed: int = 0,
    config: EncoderTrainConfig | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], Path]:
    """Encoder, codes and clusters of ``objects`` written to ``out_dir``; returns (clusters.json data, its path).

    ``seed`` seeds both the encoder training and K-means; ``config`` overrides the encoder settings
    (its own seed is then replaced by ``seed``).
    """
    out = Path(out_dir)
    num_train = sum(o.split == TRAIN_SPLIT for o in objects)
    check_k(k, num_train)  # before training, which can take a minute
    config = replace(config or EncoderTrainConfig(), seed=seed)
    codes = ShapeCodes.load_or_compute(out, set_name, objects, points, config, log)
    result = {
        "format": CLUSTERS_FORMAT,
        "set": set_name,
        "k": k,
        "seed": seed,
        "train_objects": num_train,
        "codes": CODES_FILE,
        "encoder": ENCODER_FILE,
        "encoder_checksum": codes.encoder_checksum,
        **cluster_codes(codes, objects, k, seed),
    }
    path = out / CLUSTERS_FILE
    atomic_write_json(path, result)
    return result, path


def format_table(result: dict[str, Any]) -> str:
    """One line per cluster: index, size, representative, categories with their counts."""
    width = max([len("representative")] + [len(c["representative"]) for c in result["clusters"]])
    lines = [f"{'cluster':>7}  {'size':>5}  {'representative':<{width}}  categories"]
    for c in result["clusters"]:
        categories = ", ".join(f"{name} {count}" for name, count in c["categories"].items())
        lines.append(f"{c['index']:>7}  {c['size']:>5}  {c['representative']:<{width}}  {categories}")
    return "\n".join(lines)
