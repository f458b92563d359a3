"""Reading a saved run folder back: which env, which model file, which normalisation stats, which env options.

A run folder (rl-zoo's layout) holds ``<env id>.zip`` (final model) or ``checkpoint.zip`` / ``best_model.zip``,
and ``<env id>/config.yml`` (hyperparameters, ``env_kwargs`` included) plus ``<env id>/vecnormalize.pkl``.
``callbacks.SplitSuccessEval`` adds the best checkpoint in ``best/``: ``best/best_model.zip``,
``best/<env id>/vecnormalize.pkl`` (where rl-zoo's ``-i <run>/best/best_model.zip`` looks for its stats) and
``best/best.json``, written last, so that it only ever describes a complete best checkpoint.

A model's statistics always sit in ``<folder of the model zip>/<env id>/vecnormalize.pkl``, rl-zoo's rule.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MODEL_FILES = ("{env_id}.zip", "best_model.zip", "checkpoint.zip")
STATS_FILE = "vecnormalize.pkl"
BEST_DIR = "best"
BEST_MODEL = "best_model.zip"
BEST_INFO = "best.json"
GATE_FILE = "gate.json"  # written by callbacks.SplitSuccessEval when a run stopped because it passed its gate


@dataclass
class SavedRun:
    """Everything needed to rebuild a run's env and policy.

    :param root: the run folder.
    :param env_id: gym id the run trained on.
    :param model_path: the model zip to load.
    :param stats_path: VecNormalize statistics, or None when the run did not normalise.
    :param hyperparams: the saved hyperparameters (``config.yml``).
    :param best_timesteps: when ``model_path`` is the best checkpoint, the step count it was saved at; else None.
    """

    root: Path
    env_id: str
    model_path: Path
    stats_path: Path | None
    hyperparams: dict[str, Any]
    best_timesteps: int | None = None

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.hyperparams.get("env_kwargs") or {})


def best_info(root: str | Path) -> dict[str, Any] | None:
    """The run's ``best/best.json`` (its best checkpoint is complete), or None when it has none."""
    info = Path(root) / BEST_DIR / BEST_INFO
    return json.loads(info.read_text()) if info.is_file() else None


def best_model_path(root: str | Path) -> Path:
    """Where a run keeps its best checkpoint (whether or not it has one yet)."""
    return Path(root) / BEST_DIR / BEST_MODEL


def passed_gate(root: str | Path) -> bool:
    """Whether the run stopped at its gate (``gate.json`` says passed)."""
    gate = Path(root) / GATE_FILE
    return gate.is_file() and bool(json.loads(gate.read_text()).get("passed", False))


def load_run(path: str | Path) -> SavedRun:
    """Locate model, stats and config in a run folder (or from a model zip in it or in its ``best/``).

    A run folder gives its best checkpoint when ``best/best.json`` exists, else the first of ``MODEL_FILES``;
    a ``.zip`` path gives that zip."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run {path} does not exist")
    root = path.parent if path.is_file() else path
    if root.name == BEST_DIR and not any(root.glob("*/config.yml")):
        root = root.parent
    configs = sorted(root.glob("*/config.yml"))
    if not configs:
        raise FileNotFoundError(f"run {root} has no <env id>/config.yml; is it a resdex_sb3.train run folder?")
    env_id = configs[0].parent.name
    best = best_info(root)
    best_model = best_model_path(root)
    if path.is_file():
        model = path
    elif best is not None and best_model.is_file():
        model = best_model
    else:
        candidates = [root / name.format(env_id=env_id) for name in MODEL_FILES]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise FileNotFoundError(f"run {root} has none of {[c.name for c in candidates]}")
        model = found[0]
    is_best = best is not None and model.resolve() == best_model.resolve()
    best_timesteps = int(best["num_timesteps"]) if is_best else None
    stats = model.parent / env_id / STATS_FILE
    return SavedRun(root, env_id, model, stats if stats.exists() else None, _read_config(configs[0]), best_timesteps)


def _read_config(path: Path) -> dict[str, Any]:
    # rl-zoo dumps an OrderedDict with python tags; its entries are plain key/value pairs
    text = path.read_text()
    loader = yaml.UnsafeLoader if "!!python" in text else yaml.SafeLoader
    data = yaml.load(text, Loader=loader)  # noqa: S506 - our own run folder, written by rl-zoo
    if isinstance(data, list):  # OrderedDict dumped as a list of pairs
        data = dict(data)
    return dict(data)
