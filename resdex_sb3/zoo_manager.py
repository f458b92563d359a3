"""rl-zoo's ExperimentManager, taught to build our batched VecEnv, read presets, and save atomically.

Everything else (CLI flags, YAML keys, schedules, ``-params`` overrides, log layout, Optuna) is rl-zoo's own.
"""

from __future__ import annotations

import inspect
import os
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from envs.files import atomic_write_bytes
from envs.objects.catalog import load_object_set
from resdex_sb3.env_builder import build_env, object_set_name, split_env_kwargs
from resdex_sb3.presets import ZOO_CONFIGS, read_preset
from resdex_sb3.run_checkpoint import RunCheckpoint
from resdex_sb3.run_folder import OBJECT_SET_CHECKSUM, run_relative_paths, save_model

DEFAULT_CONFIG = ZOO_CONFIGS / "ppo.yml"  # PPO's; every algorithm has its own, zoo_configs/<algo>.yml
ZOO_KEYS = {"n_envs", "n_timesteps", "normalize", "policy_kwargs", "env_kwargs", "callback", "env_wrapper",
            "vec_env_wrapper", "frame_stack", "monitor_kwargs", "policy"}  # fmt: skip
#: an algorithm's arguments that a preset may not set: its locals, and what rl-zoo passes itself (a preset that
#: set those would fail later with a duplicate-argument TypeError)
NOT_PRESET_KEYS = {"self", "env", "_init_setup_model", "seed", "tensorboard_log", "verbose", "device"}


def algo_keys(algo: str) -> set[str]:
    """The arguments of ``algo`` (rl-zoo's name: ``ppo``, ``trpo`` ...) that a preset may set: those of the class
    rl-zoo's ``ALGOS`` maps it to, less :data:`NOT_PRESET_KEYS`."""
    from rl_zoo3.utils import ALGOS

    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; rl-zoo knows {sorted(ALGOS)}")
    return set(inspect.signature(ALGOS[algo].__init__).parameters) - NOT_PRESET_KEYS


def select_preset(config_path: str | Path, env_id: str, preset: str, algo: str = "ppo") -> dict[str, Any]:
    """The hyperparameters of ``env_id`` under ``preset`` in a zoo YAML, with every key checked against rl-zoo's
    keys and ``algo``'s arguments."""
    return read_preset(config_path, [env_id, preset], ZOO_KEYS | algo_keys(algo))


def preset_policy(hyperparams: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A preset's policy class (a dotted path imported) and its ``policy_kwargs`` (a ``"dict(...)"`` string
    evaluated, as rl-zoo reads it): what a script building the model without rl-zoo passes to SB3."""
    policy = hyperparams["policy"]
    if isinstance(policy, str) and "." in policy:
        module, _, name = policy.rpartition(".")
        policy = getattr(__import__(module, fromlist=[name]), name)
    kwargs = hyperparams.get("policy_kwargs") or {}
    if isinstance(kwargs, str):
        kwargs = eval(kwargs)  # noqa: S307 - rl-zoo's own reading of the YAML's "dict(...)" strings
    return policy, dict(kwargs)


class BatchedExperimentManager(ExperimentManager):
    """ExperimentManager over ``envs``' batched sim.

    Class attributes set by ``resdex_sb3.train`` before rl-zoo instantiates it: ``preset`` (YAML preset) and
    ``run_dir`` (a fixed run folder instead of rl-zoo's numbered one).
    """

    preset: str = "cpu"
    run_dir: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.run_dir:
            self.save_path = str(Path(self.run_dir))
            self.params_path = f"{self.save_path}/{self.env_name}"
        self._checkpoint_freq = self.save_freq
        self.object_set_checksum: str | None = None
        self.save_freq = -1  # rl-zoo's own CheckpointCallback is replaced by RunCheckpoint

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        params = select_preset(self.config, self.env_name.gym_id, self.preset, self.algo)
        # rl-zoo lets --env-kwargs replace the YAML's env_kwargs whole; here they override it key by key, so a
        # preset's settings (desynchronised episodes, its reward) survive a command line that names the objects
        self.env_kwargs = {**(params.get("env_kwargs") or {}), **self.env_kwargs}
        module = types.ModuleType("_resdex_zoo_preset")
        module.hyperparams = {self.env_name.gym_id: params}  # type: ignore[attr-defined]
        sys.modules[module.__name__] = module
        original, self.config = self.config, module.__name__
        try:
            return super().read_hyperparameters()
        finally:
            self.config = original

    def create_envs(self, n_envs: int, eval_env: bool = False, no_log: bool = False) -> VecEnv:
        run_dir = Path(self.save_path)
        # paths from the command line become run-relative once, here, and are saved and read back in that form
        self.env_kwargs = run_relative_paths(self.env_kwargs or {}, run_dir)
        kwargs = self.env_kwargs if not eval_env else run_relative_paths(self.eval_env_kwargs or {}, run_dir)
        options, _ = split_env_kwargs(kwargs)
        objset = load_object_set(object_set_name(options), options.get("data_dir"))
        self.object_set_checksum = objset.checksum  # recorded in config.yml, so evaluation can tell other data
        seed = (self.seed or 0) + (10_000 if eval_env else 0)
        env = build_env(self.env_name.gym_id, n_envs, seed, kwargs, root=run_dir, object_set=objset)
        if self.vec_env_wrapper is not None:
            env = self.vec_env_wrapper(env)
        return self._maybe_normalize(env, eval_env)

    def create_callbacks(self) -> None:
        """rl-zoo's callbacks (the preset's ``callback`` list included), our atomic checkpoint, and the run handed
        to every callback that asks for it: one with a ``bind_run(run_dir, env_id, env_kwargs)`` method (such as
        ``callbacks.SplitSuccessEval``) gets it, so that this package never imports ``callbacks``."""
        super().create_callbacks()
        run_dir = Path(self.save_path)
        if self._checkpoint_freq > 0:
            self.callbacks.append(RunCheckpoint(self._checkpoint_freq, run_dir, self.env_name.gym_id))
        for callback in self.callbacks:
            bind_run = getattr(callback, "bind_run", None)
            if callable(bind_run):
                bind_run(run_dir, self.env_name.gym_id, dict(self.env_kwargs or {}))

    def learn(self, model: BaseAlgorithm) -> None:
        """rl-zoo's ``learn``, except that ``-i`` keeps counting timesteps (curves and schedules continue)."""
        kwargs: dict[str, Any] = {"reset_num_timesteps": not self.continue_training}
        if self.log_interval > -1:
            kwargs["log_interval"] = self.log_interval
        elif self.log_interval < -1:
            kwargs["log_interval"] = None
        if self.callbacks:
            kwargs["callback"] = self.callbacks
        try:
            model.learn(self.n_timesteps, **kwargs)
        except KeyboardInterrupt:
            pass  # rl-zoo saves the model when interrupted; so do we
        finally:
            assert model.env is not None
            model.env.close()

    def _save_config(self, saved_hyperparams: dict[str, Any]) -> None:
        """rl-zoo's ``config.yml``, ``args.yml`` and ``command.txt``, but as plain YAML that a safe loader reads, written
        atomically, with run-relative paths in ``env_kwargs`` and the object set's checksum. ``args.yml`` is the
        last process's flags; ``command.txt`` keeps every command that trained the run, one line each, so a resumed
        run still says what it started from (``-i``) and its first budget."""
        config = {**_plain(saved_hyperparams), "env_kwargs": _plain(self.env_kwargs),
                  OBJECT_SET_CHECKSUM: self.object_set_checksum}  # fmt: skip
        params = Path(self.params_path)
        atomic_write_bytes(params / "config.yml", yaml.safe_dump(config, sort_keys=True).encode())
        args = _plain({key: value for key, value in sorted(vars(self.args).items())})
        atomic_write_bytes(params / "args.yml", yaml.safe_dump(args, sort_keys=False).encode())
        command = " ".join(shlex.quote(arg) for arg in sys.orig_argv)
        history = params / "command.txt"  # --overwrite clears the folder first, so an old history is this run's
        earlier = history.read_bytes() if history.is_file() else b""
        atomic_write_bytes(history, earlier + (command + "\n").encode())
        print(f"Log path: {self.save_path}")

    def save_trained_model(self, model: BaseAlgorithm) -> None:
        print(f"Saving to {self.save_path}")
        save_model(model, Path(self.save_path) / f"{self.env_name}.zip", self.env_name.gym_id)


def _plain(value: Any) -> Any:
    """``value`` as plain YAML data: mappings, lists, strings, numbers, booleans, None (anything else as text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def default_config_path(algo: str = "ppo") -> str:
    """The zoo YAML of ``algo``: ``$RESDEX_ZOO_CONFIG`` when set, else ``zoo_configs/<algo>.yml``."""
    return os.environ.get("RESDEX_ZOO_CONFIG", str(ZOO_CONFIGS / f"{algo}.yml"))
