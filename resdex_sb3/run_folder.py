"""The one owner of the run-folder layout: where a run's models, statistics, checkpoints and records live, how
they are written (atomically, through ``envs.files``), and how a saved run is read back.

A ``resdex_sb3.train`` run folder (rl-zoo's layout plus ours)::

    <run>/<env id>.zip                   final model (rl-zoo's name)
    <run>/<env id>/config.yml            hyperparameters, ``env_kwargs`` included (rl-zoo writes it)
    <run>/<env id>/args.yml              the command's flags (rl-zoo writes it); ``algo`` says which algorithm
                                         loads the run's models (:attr:`SavedRun.algo`, :func:`load_algorithm`)
    <run>/<env id>/vecnormalize.pkl      the final model's normalisation statistics
    <run>/checkpoint.zip, checkpoint.json   the last periodic checkpoint; the JSON (written last) holds its step count
    <run>/best/best_model.zip, best/<env id>/vecnormalize.pkl, best/best.json   the best checkpoint by periodic
                                         evaluation (``callbacks.SplitSuccessEval``); best.json is written last, so
                                         it only ever describes a complete best checkpoint
    <run>/gate.json                      written when the run stopped because it passed its gate
    <run>/tb/                            tensorboard events

A model's statistics always sit in ``<folder of the model zip>/<env id>/vecnormalize.pkl``, rl-zoo's rule (so
``-i <run>/best/best_model.zip`` finds them). A DAgger student's run folder (``resdex_sb3.distill``) holds
``<env id>.zip`` and ``progress.json`` (``rounds_done``) beside the same ``config.yml``.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

from envs.files import atomic_write, atomic_write_json, read_json
from resdex_sb3.errors import UserError

MODEL_FILES = ("{env_id}.zip", "best_model.zip", "checkpoint.zip")
STATS_FILE = "vecnormalize.pkl"
ARGS_FILE = "args.yml"  # rl-zoo's record of the command's flags, ``algo`` included
BEST_DIR = "best"
BEST_MODEL = "best_model.zip"
BEST_INFO = "best.json"
GATE_FILE = "gate.json"  # written by callbacks.SplitSuccessEval when a run stopped because it passed its gate
CHECKPOINT_MODEL = "checkpoint.zip"
CHECKPOINT_INFO = "checkpoint.json"
PROGRESS_FILE = "progress.json"  # a DAgger run's finished rounds
STUDENT_ENV_ID = "ResDexVision-v0"  # the env id, hence the model name, of every DAgger student run
#: ``env_kwargs`` that hold paths: saved relative to the run folder, so that a run folder can move
PATH_OPTIONS = ("base_models", "shape_codes", "data_dir")
#: config key of the content checksum of the object set a run trained on (``envs.objects`` ``ObjectSet.checksum``)
OBJECT_SET_CHECKSUM = "object_set_checksum"


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

    @property
    def algo(self) -> str:
        """The algorithm that trained the run: its config's ``algo`` (a DAgger student's ``dagger``), else the
        ``algo`` of rl-zoo's ``<env id>/args.yml`` (``ppo``, ``trpo`` ...), else ``ppo`` (runs that record none)."""
        return str(self.hyperparams.get("algo") or run_algo(self.root, self.env_id) or "ppo")

    @property
    def object_set_checksum(self) -> str | None:
        """Checksum of the object set the run trained on (None for runs saved before it was recorded)."""
        return self.hyperparams.get(OBJECT_SET_CHECKSUM)


def best_info(root: str | Path) -> dict[str, Any] | None:
    """The run's ``best/best.json`` (its best checkpoint is complete), or None when it has none."""
    info = Path(root) / BEST_DIR / BEST_INFO
    return read_json(info, "best-checkpoint record") if info.is_file() else None


def run_relative_paths(env_kwargs: dict[str, Any], run_dir: str | Path) -> dict[str, Any]:
    """``env_kwargs`` with their ``PATH_OPTIONS`` made relative to the run folder, the one form a run saves.

    Relative paths given on a command line may be relative to the run folder (the pipeline's ``../base-0``) or
    to the working directory (``runs/base-0``); the run folder wins when the path exists there. This guess is
    made once, here, when a run starts; reading a run back (:func:`resolve_run_path`) never guesses."""
    run_dir = Path(run_dir).resolve()

    def relative(path: str | Path) -> str:
        p = Path(path)
        if not p.is_absolute() and (run_dir / p).exists():
            return str(p)
        if p.is_absolute() or p.exists():
            return os.path.relpath(p.resolve(), run_dir)
        return str(p)  # missing everywhere: building the env names it

    out = dict(env_kwargs)
    for key in PATH_OPTIONS:
        if out.get(key) is None:
            continue
        out[key] = [relative(p) for p in out[key]] if isinstance(out[key], (list, tuple)) else relative(out[key])
    return out


def resolve_run_path(path: str | Path, root: str | Path | None) -> Path:
    """A path from a run's ``env_kwargs``: absolute as it is; relative to the run folder ``root`` (relative to the
    working directory only when there is no run folder, as for an env built by hand)."""
    p = Path(path)
    if p.is_absolute() or root is None:
        return p
    resolved = Path(root) / p
    if not resolved.exists():
        raise FileNotFoundError(f"{p} (in the env_kwargs of run {root}) does not exist relative to that run folder, "
                                "where a run's paths are resolved; write it relative to the run folder, or absolute, "
                                f"in {root}/<env id>/config.yml")  # fmt: skip
    return resolved


def warn_other_data(root: str | Path, saved_checksum: str | None, objset: Any) -> bool:
    """Warn on stderr when the run at ``root``, made on object data with ``saved_checksum``, is used on ``objset``
    with another content checksum (another build of the set, or changed files): its numbers may not reproduce.
    Returns whether it warned; runs saved before checksums were recorded pass silently."""
    if saved_checksum is None or saved_checksum == objset.checksum:
        return False
    print(f"warning: run {root} was made on object set {objset.name!r} with checksum {saved_checksum[:12]}, but the "
          f"data here has {objset.checksum[:12]}: results may differ from the run's own", file=sys.stderr)
    return True


def run_algo(root: str | Path, env_id: str) -> str | None:
    """The ``--algo`` the training run folder ``root`` was trained with (its ``<env id>/args.yml``), or None when
    it records none."""
    args = Path(root) / env_id / ARGS_FILE
    if not args.is_file():
        return None
    algo = read_run_config(args).get("algo")
    return str(algo) if algo else None


def model_algo(model_path: str | Path, env_id: str) -> str | None:
    """The ``--algo`` behind a run's model zip (``<run>/<env id>.zip``, ``checkpoint.zip`` or
    ``best/best_model.zip``), read from its run's ``args.yml``; None when no run records one."""
    folder = Path(model_path).parent
    return run_algo(folder, env_id) or (run_algo(folder.parent, env_id) if folder.name == BEST_DIR else None)


def load_algorithm(model_path: str | Path, algo: str, device: str = "cpu") -> BaseAlgorithm:
    """The SB3 model at ``model_path``, loaded with the class rl-zoo's ``ALGOS`` maps ``algo`` to (``PPO``,
    sb3-contrib's ``TRPO`` ...): a model must be loaded by the algorithm that saved it."""
    from rl_zoo3.utils import ALGOS

    if algo not in ALGOS:
        raise ValueError(f"{model_path} was trained with algorithm {algo!r}, which rl-zoo does not know")
    return ALGOS[algo].load(model_path, device=device)


def stats_path(model_path: str | Path, env_id: str) -> Path:
    """Where the statistics of the model zip ``model_path`` live (rl-zoo's rule)."""
    return Path(model_path).parent / env_id / STATS_FILE


def save_model(model: BaseAlgorithm, path: str | Path, env_id: str) -> None:
    """``model`` and its ``VecNormalize`` statistics (when it has some), each written atomically; stale statistics
    from an earlier model at ``path`` are removed, so they are never applied to this one."""
    atomic_write(path, lambda tmp: model.save(tmp))
    stats = stats_path(path, env_id)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        atomic_write(stats, lambda tmp: vec_normalize.save(str(tmp)))
    else:
        stats.unlink(missing_ok=True)


def write_checkpoint(model: BaseAlgorithm, root: str | Path, env_id: str) -> Path:
    """The run's periodic checkpoint: model and statistics, then ``checkpoint.json`` with the step count (each
    file replaced atomically; a kill between them leaves the JSON one checkpoint behind, which is why a resume
    counts the steps saved in the model itself, :func:`resume_point`)."""
    root = Path(root)
    save_model(model, root / CHECKPOINT_MODEL, env_id)
    atomic_write_json(root / CHECKPOINT_INFO, {"num_timesteps": int(model.num_timesteps), "model": CHECKPOINT_MODEL})
    return root / CHECKPOINT_MODEL


def checkpoint_steps(root: str | Path) -> int:
    """Env steps of the run's last complete checkpoint (0 when it has none)."""
    info = Path(root) / CHECKPOINT_INFO
    return int(read_json(info, "checkpoint record")["num_timesteps"]) if info.is_file() else 0


def model_steps(path: str | Path) -> int:
    """Env steps behind the SB3 model zip ``path`` (its saved ``num_timesteps``), read without loading the model.

    :param path: a model ``.zip`` written by SB3's ``save``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            return int(json.loads(archive.read("data"))["num_timesteps"])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise UserError(f"{path}: not a readable SB3 model ({type(err).__name__}: {err})") from None


def resume_point(root: str | Path, env_id: str) -> tuple[Path, int] | None:
    """The model a killed or finished run continues from, and its env steps: the later of its last checkpoint
    (``checkpoint.zip``, once a ``checkpoint.json`` exists; the steps saved in the zip count, which a kill inside
    :func:`write_checkpoint` cannot leave stale) and its final model (an interrupted run saves one too); None when
    the run saved neither. Both share the run's statistics file (``stats_path``).

    :param root: the run folder.
    :param env_id: gym id of the run (names its final model).
    """
    root = Path(root)
    found: list[tuple[Path, int]] = []
    if (root / CHECKPOINT_MODEL).is_file() and (root / CHECKPOINT_INFO).is_file():
        found.append((root / CHECKPOINT_MODEL, model_steps(root / CHECKPOINT_MODEL)))
    final = root / f"{env_id}.zip"
    if final.is_file():
        found.append((final, model_steps(final)))
    return max(found, key=lambda point: point[1]) if found else None  # a tie keeps the checkpoint


def trained_before(root: str | Path) -> str | None:
    """What shows that ``root`` already holds a run (a model, a checkpoint, a config), or None."""
    root = Path(root)
    if not root.is_dir():
        return None
    found = [p.name for p in sorted(root.glob("*.zip"))] + [CHECKPOINT_INFO] * (root / CHECKPOINT_INFO).is_file()
    found += [str(p.relative_to(root)) for p in sorted(root.glob("*/config.yml"))]
    return ", ".join(found) or None


def finished_rounds(root: str | Path) -> int:
    """DAgger rounds behind the saved student of the run ``root`` (0 while there is none): ``student_rounds`` of
    its progress record, which only the student's save changes (``rounds_done`` also counts the periodic trainer
    checkpoints; records written before ``student_rounds`` existed have the two equal)."""
    progress = Path(root) / PROGRESS_FILE
    if not (Path(root) / f"{STUDENT_ENV_ID}.zip").exists() or not progress.is_file():
        return 0
    record = read_json(progress, "DAgger progress")
    return int(record.get("student_rounds", record.get("rounds_done", 0)))


def best_model_path(root: str | Path) -> Path:
    """Where a run keeps its best checkpoint (whether or not it has one yet)."""
    return Path(root) / BEST_DIR / BEST_MODEL


def continuation_start(root: str | Path, env_id: str) -> Path:
    """The model a continuation of the run (a hyper-policy's stage 2) starts from: its best checkpoint, with that
    checkpoint's statistics, else its final model.

    :param root: the run folder continued.
    :param env_id: its env id, which names its final model.
    """
    best = best_model_path(root)
    return best if best.exists() else Path(root) / f"{env_id}.zip"


def continuation_steps(root: str | Path) -> int:
    """Env steps behind :func:`continuation_start`, from the run's records alone: its best checkpoint's
    (``best.json``), else its last checkpoint's (0 when it has neither).

    :param root: the run folder continued.
    """
    best = best_info(root)
    return int(best["num_timesteps"]) if best else checkpoint_steps(root)


def passed_gate(root: str | Path) -> bool:
    """Whether the run stopped at its gate (``gate.json`` says passed)."""
    gate = Path(root) / GATE_FILE
    return gate.is_file() and bool(read_json(gate, "gate record").get("passed", False))


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
    config = read_run_config(configs[0])
    if config.get("normalize") and not stats.exists():  # acting on raw observations would fail silently
        raise FileNotFoundError(f"{stats} is missing: run {root} normalised its observations (normalize: "
                                f"{config['normalize']}), and {model.name} needs those statistics")  # fmt: skip
    return SavedRun(root, env_id, model, stats if stats.exists() else None, config, best_timesteps)


def observation_stats(path: Path | None, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean, ``sqrt(var + epsilon)`` and clip of the observation normalisation saved in a ``vecnormalize.pkl``
    (the identity when there is none, or when it does not normalise observations), for code that normalises
    outside a ``VecNormalize`` (the frozen bases, the DAgger expert).

    :param path: the statistics file, or None.
    :param width: the observation width the statistics must have.
    """
    identity = (np.zeros(width), np.ones(width), np.inf)
    if path is None:
        return identity
    try:
        with open(path, "rb") as file:
            normalizer = pickle.load(file)
    except (EOFError, pickle.UnpicklingError, AttributeError, ImportError) as err:  # truncated or foreign
        raise UserError(f"{path}: unreadable normalisation statistics ({type(err).__name__}: {err})") from None
    if not isinstance(normalizer, VecNormalize):
        raise ValueError(f"{path} does not hold a VecNormalize but a {type(normalizer).__name__}")
    if not normalizer.norm_obs:
        return identity
    rms = normalizer.obs_rms
    if not isinstance(rms, RunningMeanStd) or rms.mean.shape != (width,):
        shape = rms.mean.shape if isinstance(rms, RunningMeanStd) else type(rms).__name__
        raise ValueError(f"{path} normalises observations of shape {shape}, not ({width},)")
    return rms.mean.copy(), np.sqrt(rms.var + normalizer.epsilon), float(normalizer.clip_obs)


class _ConfigLoader(yaml.SafeLoader):
    """A safe loader that also reads the one python tag rl-zoo writes into ``config.yml``: an ``OrderedDict``
    dumped as a list of pairs. Any other tag is refused, so a run folder from elsewhere cannot run code."""


_ConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/object/apply:collections.OrderedDict",
    lambda loader, node: dict(loader.construct_sequence(node.value[0], deep=True)),
)


def model_and_stats(path: str | Path) -> tuple[Path, Path | None]:
    """The model zip and its ``VecNormalize`` statistics (None when there are none) that ``path`` names: a run
    folder (read by :func:`load_run`: its best checkpoint, else its final model), a model ``.zip``, or a folder
    holding exactly one ``.zip``. A bare zip's statistics are ``vecnormalize.pkl`` beside it, else the one file
    of that name one folder down (rl-zoo's ``<env id>/vecnormalize.pkl``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir() and any(path.glob("*/config.yml")):
        run = load_run(path)
        return run.model_path, run.stats_path
    if path.is_dir():
        zips = sorted(path.glob("*.zip"))
        if len(zips) != 1:
            raise FileNotFoundError(f"{path} is not a run folder and holds {len(zips)} .zip models; name one .zip")
        path = zips[0]
    if path.suffix != ".zip":
        raise ValueError(f"{path} is neither a run folder nor a .zip model")
    beside = path.parent / STATS_FILE
    below = sorted(path.parent.glob(f"*/{STATS_FILE}"))
    if beside.is_file():
        return path, beside
    if len(below) > 1:
        raise ValueError(f"{path}: several statistics files one folder down ({[str(p) for p in below]}); "
                         "which one belongs to the model is ambiguous")  # fmt: skip
    return path, (below[0] if below else None)


def read_run_config(path: Path) -> dict[str, Any]:
    """A run's ``<env id>/config.yml`` (ours, or one that rl-zoo wrote with its ``OrderedDict`` tag)."""
    try:
        data = yaml.load(path.read_text(), Loader=_ConfigLoader)  # noqa: S506 - a safe loader plus one tag
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: unreadable run config ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a run config must be a mapping of hyperparameters")
    return data
