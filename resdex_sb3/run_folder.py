"""Reading a saved run folder back: which env, which model file, which normalisation stats, which env options.

A run folder (rl-zoo's layout) holds ``<env id>.zip`` (final model) or ``checkpoint.zip`` / ``best_model.zip``,
and ``<env id>/config.yml`` (hyperparameters, ``env_kwargs`` included) plus ``<env id>/vecnormalize.pkl``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MODEL_FILES = ("{env_id}.zip", "best_model.zip", "checkpoint.zip")


@dataclass
class SavedRun:
    """Everything needed to rebuild a run's env and policy.

    :param root: the run folder.
    :param env_id: gym id the run trained on.
    :param model_path: the model zip to load.
    :param stats_path: VecNormalize statistics, or None when the run did not normalise.
    :param hyperparams: the saved hyperparameters (``config.yml``).
    """

    root: Path
    env_id: str
    model_path: Path
    stats_path: Path | None
    hyperparams: dict[str, Any]

    @property
    def env_kwargs(self) -> dict[str, Any]:
        return dict(self.hyperparams.get("env_kwargs") or {})


def load_run(path: str | Path) -> SavedRun:
    """Locate model, stats and config in a run folder (or next to a model zip)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"run {path} does not exist")
    root = path.parent if path.is_file() else path
    configs = sorted(root.glob("*/config.yml"))
    if not configs:
        raise FileNotFoundError(f"run {root} has no <env id>/config.yml; is it a resdex_sb3.train run folder?")
    env_id = configs[0].parent.name
    if path.is_file():
        model = path
    else:
        candidates = [root / name.format(env_id=env_id) for name in MODEL_FILES]
        found = [c for c in candidates if c.exists()]
        if not found:
            raise FileNotFoundError(f"run {root} has none of {[c.name for c in candidates]}")
        model = found[0]
    hyperparams = _read_config(configs[0])
    stats = root / env_id / "vecnormalize.pkl"
    return SavedRun(root, env_id, model, stats if stats.exists() else None, hyperparams)


def _read_config(path: Path) -> dict[str, Any]:
    # rl-zoo dumps an OrderedDict with python tags; its entries are plain key/value pairs
    text = path.read_text()
    loader = yaml.UnsafeLoader if "!!python" in text else yaml.SafeLoader
    data = yaml.load(text, Loader=loader)  # noqa: S506 - our own run folder, written by rl-zoo
    if isinstance(data, list):  # OrderedDict dumped as a list of pairs
        data = dict(data)
    return dict(data)
