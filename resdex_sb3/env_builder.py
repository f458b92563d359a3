"""One place that turns an env id plus YAML/CLI ``env_kwargs`` into the batched VecEnv a run trains or evaluates on.

``env_kwargs`` (all optional) beyond ``TaskConfig`` fields:

- ``object_set``: set name (default ``embedded``); ``data_dir``: its data directory;
- ``split``: which split to use (default ``train``); ``objects``: explicit object names (a base policy's one object);
- ``shape_codes``: path of a codes file (hyper observation), ``base_models``: frozen base runs (hyper variant);
- ``residual``: with ``base_models``, whether the hyper action ends in a 24-d residual (default true, ResDex) or
  is the mixing logits alone (false: the "MoE, weights only" ablation; train it with ``residual_dim=0``);
- ``num_threads``: physics threads (0 = all cores) of the ``mujoco`` backend;
- ``backend``: physics engine, ``mujoco`` (default, C MuJoCo) or ``warp`` (MuJoCo Warp); ``device``: its warp
  device (``cpu``, ``cuda:0`` ...; default CUDA when present).

``ResDexVision`` also takes ``envs.vision.VisionConfig`` fields (``cloud_mode``, ``privileged`` ...); its
``gt_pose`` clouds come from the object set's stored surface points.

Relative paths are resolved against ``root``, the run folder (``run_folder.resolve_run_path``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from envs.backends import check_backend_options
from envs.factory import make_vec_env
from envs.config import DEFAULT_BACKEND, TaskConfig
from envs.objects.catalog import DEFAULT_SET, ObjectSet, load_object_set
from envs.variants import VISION_VARIANTS
from envs.vision import VISION_OPTIONS
from resdex_sb3.run_folder import resolve_run_path

ENV_OPTIONS = ("object_set", "data_dir", "split", "objects", "shape_codes", "base_models", "residual",
               "num_threads", "backend", "device")  # fmt: skip
#: What every evaluation env overrides in a run's ``env_kwargs``: all envs start one whole episode together,
#: whereas training desynchronises them (``random_initial_progress``).
EVALUATION_OPTIONS: dict[str, Any] = {"random_initial_progress": False}


def split_env_kwargs(env_kwargs: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(builder options, TaskConfig overrides)."""
    kwargs = dict(env_kwargs or {})
    options = {k: kwargs.pop(k) for k in ENV_OPTIONS if k in kwargs}
    return options, kwargs


def check_env_kwargs(env_id: str, task_kwargs: Mapping[str, Any]) -> None:
    """Refuse keys that are neither builder options nor options of ``env_id``'s task, listing every known key
    (before any object is loaded)."""
    known = set(ENV_OPTIONS) | {f.name for f in fields(TaskConfig)}
    if env_id.removesuffix("-v0") in VISION_VARIANTS:
        known |= set(VISION_OPTIONS)
    unknown = sorted(set(task_kwargs) - known)
    if unknown:
        raise ValueError(f"unknown env_kwargs key(s) {unknown} for {env_id}; known: {sorted(known)}")


def check_residual_option(options: Mapping[str, Any]) -> None:
    """Refuse a ``residual`` option that cannot mean anything: not a boolean, or without ``base_models`` (it
    chooses the composer's action layout, and there is no composer without bases)."""
    if "residual" not in options:
        return
    if not isinstance(options["residual"], (bool, np.bool_)):
        raise ValueError(f"env option residual must be true or false, not {options['residual']!r}")
    if not options.get("base_models"):
        raise ValueError("env option residual needs base_models (it sets the composer's hyper-action layout, and "
                         "without bases there is no composer): drop residual or give base_models")  # fmt: skip


def object_set_name(env_kwargs: Mapping[str, Any]) -> str:
    """The object set a run's ``env_kwargs`` name (``embedded`` when they name none)."""
    return str(env_kwargs.get("object_set") or DEFAULT_SET)


def select_objects(objset: ObjectSet, split: str | None, names: list[str] | None) -> list:
    """The objects a run uses: explicit names, else a split (``all`` for every object)."""
    if names:
        return [objset.by_name(n) for n in names]
    if split in (None, "all"):
        return list(objset.objects)
    chosen = objset.split(split)
    if not chosen:
        raise ValueError(f"object set {objset.name!r} has no objects in split {split!r}")
    return chosen


def build_env(env_id: str, n_envs: int, seed: int | None, env_kwargs: Mapping[str, Any] | None = None,
              root: Path | None = None, object_set: ObjectSet | None = None) -> VecEnv:  # fmt: skip
    """The batched env of ``env_id`` (composer included for the hyper variant when ``base_models`` is set)."""
    options, task_kwargs = split_env_kwargs(env_kwargs)
    check_env_kwargs(env_id, task_kwargs)
    check_residual_option(options)
    backend, device = options.get("backend", DEFAULT_BACKEND), options.get("device")
    check_backend_options(backend, device)  # before loading any object
    objset = object_set or load_object_set(object_set_name(options), options.get("data_dir"))
    objects = select_objects(objset, options.get("split", "train"), options.get("objects"))
    codes = None
    if options.get("shape_codes"):
        codes = codes_for(resolve_run_path(options["shape_codes"], root), objset, objects)
    env: VecEnv = make_vec_env(
        env_id, n_envs, objects, seed=seed, scene_config=objset.scene_config, shape_codes=codes,
        proposals=objset.proposals, num_threads=int(options.get("num_threads", 0)), points=objset.points,
        backend=backend, device=device, **task_kwargs,
    )  # fmt: skip
    bases = options.get("base_models")
    if bases:
        from resdex_sb3.composer import ResidualMoEComposer

        paths = [resolve_run_path(b, root) for b in bases]
        env = ResidualMoEComposer(env, paths, residual=options.get("residual", True))
    return env


def codes_for(codes_path: Path, objset: ObjectSet, objects: list) -> dict[str, np.ndarray]:
    """Shape codes of ``objects``: from the codes file, and for objects it lacks (an imported set, say) from the
    encoder saved beside it, so a trained hyper-policy runs on any object set."""
    from resdex_sb3.shape import ENCODER_FILE, ShapeCodes, load_encoder

    saved = ShapeCodes.load(codes_path)
    codes = {o.name: saved[o.name] for o in objects if o.name in saved}
    missing = [o.name for o in objects if o.name not in codes]
    if missing:
        encoder_path = codes_path.parent / ENCODER_FILE
        if not encoder_path.exists():
            raise ValueError(f"shape codes {codes_path} lack {len(missing)} objects (e.g. {missing[:3]}) and no "
                             f"{ENCODER_FILE} is beside them to encode those objects")  # fmt: skip
        encoder, config, _ = load_encoder(encoder_path)
        fresh = ShapeCodes.compute(encoder, {n: objset.points[n] for n in missing}, objset.name, config.num_points)
        codes.update({n: fresh[n] for n in missing})
    return codes
