"""The one reader of ``zoo_configs/`` YAML: every preset of every file is read here, and every key is checked.

``ppo.yml`` (rl-zoo hyperparameters, keyed by env id, then preset) is read by ``zoo_manager.select_preset``
through :func:`read_preset`; ``pipeline.yml`` and ``distill.yml`` (keyed by preset) through the loaders below.
A bad file or key is a ``ValueError`` whose one line names the file, the preset and the key.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ZOO_CONFIGS = Path(__file__).resolve().parents[1] / "zoo_configs"
PIPELINE_CONFIG = ZOO_CONFIGS / "pipeline.yml"
DISTILL_CONFIG = ZOO_CONFIGS / "distill.yml"
ABLATIONS_CONFIG = ZOO_CONFIGS / "ablations.yml"
PIPELINE_KEYS = frozenset({"object_set", "k", "base_reward", "base_timesteps", "stage1_timesteps", "stage2_timesteps",
                           "stage2_reward", "baseline", "seeds", "eval_trials", "encoder_epochs", "distill_rounds",
                           "base_attempts", "base_gate", "base_eval_trials"})  # fmt: skip
ABLATION_KEYS = frozenset({"seeds", "variants"})
VARIANT_KEYS = frozenset({"bases", "k", "algo", "zoo_preset", "stage1_reward", "stage2_reward", "reuse", "label"})
DISTILL_KEYS = frozenset({"n_envs", "rounds", "steps_per_round", "buffer_steps", "n_epochs", "n_minibatches",
                          "learning_rate", "beta", "policy_kwargs", "eval_every_rounds", "eval_trials",
                          "eval_max_objects", "checkpoint_every_rounds", "env_kwargs"})  # fmt: skip


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path``."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"{path}: cannot read config ({reason})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config must be a mapping, not {type(data).__name__}")
    return data


def read_preset(path: str | Path, keys: Iterable[str], allowed: Iterable[str],
                required: Iterable[str] = ()) -> dict[str, Any]:  # fmt: skip
    """The mapping at ``keys`` (for example ``["ResDexBase-v0", "cpu"]``) inside ``path``, its keys checked
    against ``allowed`` and ``required``."""
    node: Any = read_yaml(path)
    where: list[str] = []
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            known = sorted(node) if isinstance(node, dict) else []
            place = "/".join(where) or "the top level"
            raise ValueError(f"{path}: no {key!r} under {place}; known: {known}")
        node, where = node[key], [*where, str(key)]
    if not isinstance(node, dict):
        raise ValueError(f"{path}: {'/'.join(where)} must be a mapping of settings")
    unknown = sorted(set(node) - set(allowed))
    missing = sorted(set(required) - set(node))
    if unknown:
        raise ValueError(f"{path}: {'/'.join(where)} has unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    if missing:
        raise ValueError(f"{path}: {'/'.join(where)} lacks key(s) {missing}")
    return dict(node)


def load_pipeline_preset(preset: str, path: str | Path = PIPELINE_CONFIG) -> dict[str, Any]:
    """Stage budgets of ``python -m resdex_sb3.pipeline --preset PRESET``."""
    return read_preset(path, [preset], PIPELINE_KEYS)


def load_distill_preset(preset: str, path: str | Path = DISTILL_CONFIG) -> dict[str, Any]:
    """The DAgger budget of ``python -m resdex_sb3.distill --preset PRESET`` (every key required)."""
    return read_preset(path, [preset], DISTILL_KEYS, required=DISTILL_KEYS)


def load_ablation_preset(preset: str, path: str | Path = ABLATIONS_CONFIG) -> dict[str, Any]:
    """The ablation grid of ``python -m resdex_sb3.ablations --preset PRESET``: its seeds and variants, every
    variant's keys and values checked."""
    grid = read_preset(path, [preset], ABLATION_KEYS, required=ABLATION_KEYS)
    variants = grid["variants"]
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"{path}: {preset}/variants must be a mapping of variant names to settings")
    for name, spec in variants.items():
        where = f"{path}: {preset}/variants/{name}"
        if not isinstance(spec, dict):
            raise ValueError(f"{where} must be a mapping of settings")
        unknown = sorted(set(spec) - VARIANT_KEYS)
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: {sorted(VARIANT_KEYS)}")
        if "k" in spec and "bases" in spec:
            raise ValueError(f"{where}: give bases (the pipeline's first N) or k (its own clustering), not both")
        for key in ("bases", "k"):
            if key in spec and not (isinstance(spec[key], int) and spec[key] >= (0 if key == "bases" else 1)):
                raise ValueError(f"{where}: {key} must be a whole number (bases >= 0, k >= 1), not {spec[key]!r}")
        if spec.get("algo", "ppo") not in ("ppo", "trpo"):
            raise ValueError(f"{where}: algo must be ppo or trpo, not {spec['algo']!r}")
    seeds = grid["seeds"]
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)):
        raise ValueError(f"{path}: {preset}/seeds must be a list of whole numbers")
    return grid
