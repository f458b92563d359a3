"""Periodic evaluation on every split with the protocol of ``resdex_sb3.evaluation``, the run's best checkpoint,
and an optional early stop once the policy passes a gate."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from envs.files import atomic_write_json
from envs.objects.catalog import load_object_set
from envs.objects.spec import SPLITS
from resdex_sb3.env_builder import object_set_name, split_env_kwargs
from resdex_sb3.evaluation import EVAL_SEED, METRICS, SplitResult, per_object_outcomes, run_episodes, split_env
from resdex_sb3.run_folder import BEST_DIR, BEST_INFO, BEST_MODEL, GATE_FILE, best_info, save_model

#: How evaluations rank for the best checkpoint: sustained success, ties broken by held, then by any-time success.
BEST_ORDER = ("sustained", "held", "success")


class SplitSuccessEval(BaseCallback):
    """Every ``eval_freq`` env steps, run ``trials`` deterministic episodes per object of each split.

    Logs ``eval/sustained_<split>``, ``eval/success_<split>`` and ``eval/held_<split>`` (see
    ``resdex_sb3.evaluation``). The experiment manager tells it its run through :meth:`bind_run`, and
    ``_init_callback`` then builds each split's envs with ``evaluation.split_env`` (one block of ``trials`` envs per
    object, ``random_initial_progress`` off), as SB3's ``EvalCallback`` is handed its eval env; a test may set
    ``make_env`` ((split, trials, max_objects) -> VecEnv) itself. The training env's normalisation statistics are
    copied in before each evaluation. The first split decides the best checkpoint and the gate:

    - best checkpoint, like SB3's ``EvalCallback`` ``best_model``: when an evaluation ranks strictly higher than
      every earlier one on (sustained, held, any-time) means (the first evaluation always does), or when it passes
      the gate (the run ends on it), ``<run>/best/best_model.zip`` and
      ``<run>/best/<env id>/vecnormalize.pkl`` (where rl-zoo's ``-i <run>/best/best_model.zip`` reads its stats)
      are written, then ``<run>/best/best.json`` ``{num_timesteps, metric, split, sustained, success, held}``. A
      continued run (one that starts with steps done) reads ``best.json`` back (when it was kept on the same first
      split), so it only replaces a better best; a fresh run drops the ``best.json`` and ``gate.json`` an earlier
      run may have left in its folder;
    - gate: with ``stop_at``, once every listed mean reaches its bound training stops (``_on_step`` returns False)
      and ``<run>/gate.json`` ``{passed: true, num_timesteps, split, stop_at, sustained, success, held}`` is
      written.

    When training ends more than ``eval_freq / 2`` steps after the last evaluation, a last one runs, so that the
    final policy competes for the best checkpoint too; a shorter gap is not worth a whole evaluation.

    :param eval_freq: env steps (summed over envs) between evaluations.
    :param splits: splits to evaluate: ``train``, ``unseen_obj``, ``unseen_cat`` or ``own`` (the objects the run
        trains on, e.g. a base policy's one object); the first decides the best checkpoint and the gate.
    :param trials: episodes per object.
    :param max_objects: evaluate at most this many objects per split, spread over its categories
        (``spread_over_categories``), to bound the cost.
    :param stop_at: stop training once the first split's means reach all these bounds (keys among ``sustained``,
        ``success``, ``held``), e.g. ``{"success": 0.9, "held": 0.8}``; None trains to the end.
    :param run_dir: run folder for ``best/`` and ``gate.json``; set by :meth:`bind_run` when None; without
        one nothing is saved.
    :param env_id: gym id, naming the statistics sub-folder as rl-zoo does; set by :meth:`bind_run` when None.
    :param verbose: SB3 verbosity (1: print each evaluation and each new best).
    """

    def __init__(self, eval_freq: int, splits: Sequence[str] = SPLITS,
                 trials: int = 4, max_objects: int = 64, stop_at: dict[str, float] | None = None,
                 run_dir: str | Path | None = None, env_id: str | None = None, verbose: int = 0) -> None:  # fmt: skip
        super().__init__(verbose)
        if not splits:
            raise ValueError("SplitSuccessEval needs at least one split")
        unknown = sorted(set(stop_at or {}) - set(METRICS))
        if unknown:
            raise ValueError(f"stop_at has unknown metric(s) {unknown}; known: {list(METRICS)}")
        self.eval_freq, self.splits, self.trials, self.max_objects = eval_freq, tuple(splits), trials, max_objects
        self.stop_at = dict(stop_at or {})
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.env_id = env_id
        #: (split, trials, max_objects) -> un-normalised evaluation VecEnv; built from the bound run when None
        self.make_env: Callable[[str, int, int], VecEnv] | None = None
        self._run_env_kwargs: dict[str, Any] | None = None
        self._envs: dict[str, VecEnv] = {}
        self._last = 0
        self.last_results: dict[str, SplitResult] = {}
        #: best means on the first split so far, in ``BEST_ORDER`` (restored from ``best.json`` on a continued run)
        self.best_rank: tuple[float, ...] = (-np.inf,) * len(BEST_ORDER)
        #: whether training stopped at the gate
        self.passed = False

    def bind_run(self, run_dir: Path, env_id: str, env_kwargs: Mapping[str, Any]) -> None:
        """Called by the experiment manager before training: the run folder, its gym id and its ``env_kwargs``
        (relative paths in them resolve against ``run_dir``)."""
        if self.run_dir is None:
            self.run_dir, self.env_id = Path(run_dir), env_id
        self._run_env_kwargs = dict(env_kwargs)

    def _init_callback(self) -> None:
        if self.make_env is None and self._run_env_kwargs is not None:
            env_id, kwargs, root = self.env_id or "", self._run_env_kwargs, self.run_dir
            options, _ = split_env_kwargs(kwargs)
            # read once, at the first evaluation, and shared by every split's env
            object_set = functools.cache(lambda: load_object_set(object_set_name(options), options.get("data_dir")))
            self.make_env = lambda split, trials, limit: split_env(env_id, kwargs, split, trials, limit, root=root,
                                                                   object_set=object_set())  # fmt: skip

    def _on_training_start(self) -> None:
        self._last = self.num_timesteps  # a continued run, like a fresh one, first evaluates eval_freq steps in
        if self.run_dir is None:
            return
        if self.env_id is None:
            raise ValueError("SplitSuccessEval has a run_dir but no env_id to name the statistics folder")
        if self.num_timesteps == 0:  # a fresh run: what an earlier run left in this folder is not about this one
            (self.run_dir / BEST_DIR / BEST_INFO).unlink(missing_ok=True)
            (self.run_dir / GATE_FILE).unlink(missing_ok=True)
            return
        best = best_info(self.run_dir)
        if best is not None and best.get("metric") == "sustained" and best.get("split") == self.splits[0]:
            self.best_rank = tuple(float(best[m]) for m in BEST_ORDER)

    def _on_step(self) -> bool:
        if self.make_env is None or self.num_timesteps - self._last < self.eval_freq:
            return True
        return self._evaluate_and_judge()

    def _on_training_end(self) -> None:
        if self.make_env is not None and self.num_timesteps - self._last > self.eval_freq / 2:
            self._evaluate_and_judge()
            self.logger.dump(self.num_timesteps)  # SB3 dumps only inside its training loop, which has ended
        for env in self._envs.values():
            env.close()
        self._envs.clear()

    def evaluate(self) -> dict[str, SplitResult]:
        """Evaluate every split with the policy's current normalisation; log and return the results."""
        assert self.make_env is not None, "bind_run (the experiment manager) or a test sets make_env"
        train_norm = self.model.get_vec_normalize_env()
        for split in self.splits:
            env = self._env(split)
            if isinstance(env, VecNormalize) and train_norm is not None:
                env.obs_rms, env.clip_obs = train_norm.obs_rms.copy(), train_norm.clip_obs
            length = env.get_attr("config")[0].episode_length
            outcomes = run_episodes(env, self._act, length, seed=EVAL_SEED)
            result = per_object_outcomes(env.get_attr("objects"), outcomes, self.trials)
            for metric in METRICS:
                self.logger.record(f"eval/{metric}_{split}", getattr(result, f"mean_{metric}"))
            self.last_results[split] = result
            if self.verbose:
                print(f"eval at {self.num_timesteps} steps, {split}: "
                      + ", ".join(f"{m} {100 * getattr(result, f'mean_{m}'):.1f} %" for m in METRICS))  # fmt: skip
        return self.last_results

    def _act(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs, deterministic=True)[0]

    def _evaluate_and_judge(self) -> bool:
        """Evaluate, keep the best checkpoint, and return False once the gate is passed."""
        self._last = self.num_timesteps
        first = self.evaluate()[self.splits[0]]
        scores = {m: getattr(first, f"mean_{m}") for m in METRICS}
        passed = bool(self.stop_at) and all(scores[m] >= bound for m, bound in self.stop_at.items())
        rank = tuple(scores[m] for m in BEST_ORDER)
        if rank > self.best_rank or passed:  # the checkpoint that passes the gate is the one the run ends with
            self.best_rank = rank
            if self.run_dir is not None:
                self._save_best(scores)
        if passed:
            self.passed = True
            if self.run_dir is not None:
                atomic_write_json(self.run_dir / GATE_FILE, {"passed": True, "num_timesteps": int(self.num_timesteps),
                                                             "split": self.splits[0], "stop_at": self.stop_at,
                                                             **scores})  # fmt: skip
            if self.verbose:
                print(f"gate {self.stop_at} passed at {self.num_timesteps} steps: training stops")
            return False
        return True

    def _save_best(self, scores: dict[str, float]) -> None:
        assert self.run_dir is not None and self.env_id is not None
        folder = self.run_dir / BEST_DIR
        info = folder / BEST_INFO
        # best.json goes first and comes back last: meanwhile readers use the final model instead of a new model
        # with old statistics (run_folder.load_run only trusts best/ while best.json exists)
        info.unlink(missing_ok=True)
        save_model(self.model, folder / BEST_MODEL, self.env_id)
        atomic_write_json(info, {"num_timesteps": int(self.num_timesteps), "metric": "sustained",
                                 "split": self.splits[0], **scores})  # fmt: skip
        if self.verbose:
            print(f"new best at {self.num_timesteps} steps: sustained {100 * scores['sustained']:.1f} % on "
                  f"{self.splits[0]} -> {folder / BEST_MODEL}")  # fmt: skip

    def _env(self, split: str) -> VecEnv:
        if split not in self._envs:
            assert self.make_env is not None
            env = self.make_env(split, self.trials, self.max_objects)
            if self.model.get_vec_normalize_env() is not None:
                env = VecNormalize(env, training=False, norm_reward=False)
            self._envs[split] = env
        return self._envs[split]
