"""rl-zoo's ExperimentManager, taught to build our batched VecEnv, read presets, and save atomically.

Everything else (CLI flags, YAML keys, schedules, ``-params`` overrides, log layout, Optuna) is rl-zoo's own.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import yaml
from rl_zoo3.exp_manager import ExperimentManager
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from callbacks.split_success_eval import EVAL_SEED, OWN_SPLIT, SplitSuccessEval, spread_over_categories
from callbacks.atomic_checkpoint import AtomicCheckpoint, atomic_save_model, atomic_save_vecnormalize
from resdex_sb3.env_builder import EVALUATION_OPTIONS, build_env

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "zoo_configs" / "ppo.yml"
ZOO_KEYS = {"n_envs", "n_timesteps", "normalize", "policy_kwargs", "env_kwargs", "callback", "env_wrapper",
            "vec_env_wrapper", "frame_stack", "monitor_kwargs", "policy"}  # fmt: skip


def select_preset(config_path: str | Path, env_id: str, preset: str) -> dict[str, Any]:
    """The hyperparameters of ``env_id`` under ``preset`` in a zoo YAML, with every key checked."""
    path = Path(config_path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ValueError(f"{path}: cannot read zoo config ({err})") from err
    if env_id not in data:
        raise ValueError(f"{path}: no section for {env_id}; sections: {sorted(data)}")
    section = data[env_id]
    if preset not in section:
        raise ValueError(f"{path}: {env_id} has no preset {preset!r}; presets: {sorted(section)}")
    params = dict(section[preset])
    allowed = ZOO_KEYS | set(PPO.__init__.__code__.co_varnames)
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(f"{path}: {env_id}/{preset} has unknown key(s) {unknown}")
    return params


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
        self.save_freq = -1  # rl-zoo's own CheckpointCallback is replaced by AtomicCheckpoint

    def read_hyperparameters(self) -> tuple[dict[str, Any], dict[str, Any]]:
        params = select_preset(self.config, self.env_name.gym_id, self.preset)
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
        kwargs = (self.eval_env_kwargs if eval_env else self.env_kwargs) or {}
        seed = (self.seed or 0) + (10_000 if eval_env else 0)
        env = build_env(self.env_name.gym_id, n_envs, seed, kwargs, root=Path(self.save_path))
        if self.vec_env_wrapper is not None:
            env = self.vec_env_wrapper(env)
        return self._maybe_normalize(env, eval_env)

    def create_callbacks(self) -> None:
        super().create_callbacks()
        if self._checkpoint_freq > 0:
            self.callbacks.append(AtomicCheckpoint(self._checkpoint_freq, self.save_path, self.env_name.gym_id))
        for callback in self.callbacks:
            if isinstance(callback, SplitSuccessEval):
                callback.make_env = self._split_env_factory()
                if callback.run_dir is None:  # where its best checkpoint and gate.json go
                    callback.run_dir, callback.env_id = Path(self.save_path), self.env_name.gym_id

    def _split_env_factory(self):
        """split -> env with ``trials`` envs per object, for ``SplitSuccessEval``: at most ``max_objects`` objects
        spread over the split's categories; the split ``own`` is the run's own objects (``objects``, else its
        ``split``). Every env runs one whole episode from the evaluation's start (``random_initial_progress`` off)."""
        from envs.objects.catalog import load_object_set
        from resdex_sb3.env_builder import select_objects, split_env_kwargs

        options, _ = split_env_kwargs(self.env_kwargs)
        loaded: list = []  # the object set, read once at the first evaluation and shared by every split

        def make(split: str, trials: int, max_objects: int) -> VecEnv:
            if not loaded:
                loaded.append(load_object_set(options.get("object_set", "embedded"), options.get("data_dir")))
            objset = loaded[0]
            if split == OWN_SPLIT:
                objects = select_objects(objset, options.get("split", "train"), options.get("objects"))
            else:
                objects = select_objects(objset, split, None)
            names = [o.name for o in spread_over_categories(objects, max_objects)]
            kwargs = {**(self.env_kwargs or {}), "split": "all", "objects": names, **EVALUATION_OPTIONS}
            return build_env(self.env_name.gym_id, len(names) * trials, EVAL_SEED, kwargs, root=Path(self.save_path),
                             object_set=objset)  # fmt: skip

        return make

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

    def save_trained_model(self, model: BaseAlgorithm) -> None:
        print(f"Saving to {self.save_path}")
        atomic_save_model(model, Path(self.save_path) / f"{self.env_name}.zip")
        vec_normalize = model.get_vec_normalize_env()
        if vec_normalize is not None:
            atomic_save_vecnormalize(vec_normalize, Path(self.params_path) / "vecnormalize.pkl")


def default_config_path() -> str:
    return os.environ.get("RESDEX_ZOO_CONFIG", str(DEFAULT_CONFIG))
