"""``python -m resdex_sb3.distill --expert RUN --mode gt_pose|camera [--out DIR] [--preset smoke|cpu|paper]``.

Distils a finished hyper-policy run (its frozen bases included) into a vision student with imitation's DAgger:
the student (``VisionStudentPolicy``: PointNet + MLP) drives ``ResDexVision`` envs from the first step (beta 0,
as ResDex), the expert (``PrivilegedExpertPolicy``) labels every visited state from the privileged part of the
same observation, and imitation's BC regresses the student's deterministic action on those labels (MSE) over a
ring buffer of the last ``buffer_steps`` steps of every env. Budgets per preset: ``zoo_configs/distill.yml``.

The run folder (default ``runs/vision-<mode>``) reads like a training run::

    ResDexVision-v0.zip            the student (SB3 policy format: ``VisionStudentPolicy.load``)
    ResDexVision-v0/config.yml     algo, policy, mode, expert (relative to the folder), preset, budget, seed and
                                   the env options evaluation rebuilds (privileged part zeroed)
    ResDexVision-v0/command.txt    the command line
    checkpoint/                    checkpoint-latest.pt (round, student, optimiser, ring buffer, random state,
                                   counters) and policy-latest.zip, written atomically every few rounds
    tb/                            tensorboard: bc/loss (MSE), dagger/online_mse, charts/success_rate (student's
                                   own rollouts), eval/{sustained,success,held}_<split>, time/*
    progress.json                  rounds and env steps done, last evaluation, wall time

Rerunning the same command continues from the checkpoint (the envs restart their episodes); a finished run is
left alone. ``python -m resdex_sb3.evaluate --model <run folder> --split unseen_cat`` evaluates the student.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import warnings
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.vec_env import VecEnv

import envs  # noqa: F401  (gym ids, headless GL default)
from envs.objects.catalog import SPLITS, ObjectSet, load_object_set
from envs.files import atomic_write, atomic_write_bytes, atomic_write_json
from envs.vision import CLOUD_MODES
from resdex_sb3.env_builder import build_env, object_set_name, split_env_kwargs
from resdex_sb3.errors import UserError, cli_main, positive_int
from resdex_sb3.evaluation import EVAL_SEED, per_object_outcomes, run_episodes, split_env
from resdex_sb3.presets import DISTILL_KEYS, load_distill_preset
from resdex_sb3.run_folder import (OBJECT_SET_CHECKSUM, PROGRESS_FILE, STUDENT_ENV_ID, finished_rounds, load_run,
                                   read_run_config, resolve_run_path, warn_other_data)

PRESETS = ("smoke", "cpu", "paper")
STUDENT_POLICY = "resdex_sb3.policies.VisionStudentPolicy"
SUCCESS_WINDOW = 200  # finished training episodes averaged into charts/success_rate


class Distillation:
    """One resumable DAgger run: one expert, one cloud mode, one run folder.

    :param expert: the finished ``ResDexHyper`` run folder (its ``base_models`` and ``shape_codes`` are used).
    :param mode: ``gt_pose`` or ``camera``.
    :param out: the run folder.
    :param preset: budget preset in ``zoo_configs/distill.yml`` (ignored when ``out`` already holds a config).
    :param data_dir: object data directory (default: the expert's, else ``$RESDEX_DATA`` or ``data/``).
    :param seed: seed of the envs, the beta draws and the minibatch order (a resumed run keeps its own).
    :param num_threads: physics and torch threads.
    :param overrides: budget keys to change (e.g. ``rounds`` to extend a finished run).
    :param progress: show a progress bar.
    """

    def __init__(self, expert: str | Path, mode: str, out: str | Path, preset: str = "cpu", data_dir: str | None = None,
                 seed: int = 0, num_threads: int = 1, overrides: dict[str, Any] | None = None,
                 progress: bool = True) -> None:  # fmt: skip
        if mode not in CLOUD_MODES:
            raise ValueError(f"--mode must be one of {CLOUD_MODES}, got {mode!r}")
        self.expert, self.mode, self.out = Path(expert), mode, Path(out)
        self.preset, self.data_dir, self.seed, self.num_threads = preset, data_dir, seed, num_threads
        self.overrides, self.progress = dict(overrides or {}), progress
        unknown = sorted(set(self.overrides) - DISTILL_KEYS)
        if unknown:
            raise ValueError(f"unknown budget key(s) {unknown}; known: {sorted(DISTILL_KEYS)}")
        self.config_path = self.out / STUDENT_ENV_ID / "config.yml"
        self.student_path = self.out / f"{STUDENT_ENV_ID}.zip"
        self.scratch = self.out / "checkpoint"

    # ------------------------------------------------------------------ configuration
    def config(self) -> dict[str, Any]:
        """The run's config: the saved one when resuming (so a rerun continues as it began), else the preset's."""
        if self.config_path.exists():
            config = read_run_config(self.config_path)
            if config.get("mode") != self.mode:
                raise ValueError(f"{self.out} is a {config.get('mode')!r} run, not {self.mode!r}")
            if config.get("seed", self.seed) != self.seed:  # a resume continues the run's own random streams
                print(f"[distill] {self.out}: continuing with the run's seed {config['seed']} (its config.yml), "
                      f"not {self.seed}")  # fmt: skip
                self.seed = int(config["seed"])
            saved_envs = config["distill"].get("n_envs")
            if self.overrides.get("n_envs", saved_envs) != saved_envs:  # its buffer and envs are sized by it
                raise UserError(f"--n-envs {self.overrides['n_envs']}: {self.out} was started with {saved_envs} "
                                "envs and continues with them (--n-envs is for new runs)")  # fmt: skip
        else:
            run = load_run(self.expert)
            expert_options, _ = split_env_kwargs(run.env_kwargs)
            data_dir = self.data_dir or expert_options.get("data_dir")
            budget = {**load_distill_preset(self.preset), **self.overrides}
            env_kwargs = {"object_set": object_set_name(expert_options), "cloud_mode": self.mode,
                          "privileged": False, **budget["env_kwargs"]}  # fmt: skip
            if data_dir:
                env_kwargs["data_dir"] = data_dir
            config = {"algo": "dagger", "policy": STUDENT_POLICY, "mode": self.mode, "preset": self.preset,
                      "expert": os.path.relpath(self.expert.resolve(), self.out.resolve()), "seed": self.seed,
                      "distill": budget, "env_kwargs": env_kwargs}  # fmt: skip
        config["distill"].update(self.overrides)  # e.g. more rounds for a finished run
        return config

    def _write_config(self, config: dict[str, Any]) -> None:
        atomic_write_bytes(self.config_path, yaml.safe_dump(config, sort_keys=False).encode())
        command = " ".join(shlex.quote(a) for a in [sys.executable, "-m", "resdex_sb3.distill", *sys.argv[1:]])
        atomic_write_bytes(self.config_path.parent / "command.txt", (command + "\n").encode())

    # ------------------------------------------------------------------ envs
    def _train_env(self, config: dict[str, Any], objset: ObjectSet, expert_root: Path) -> VecEnv:
        """Training envs: the expert's training objects, its shape codes, the privileged part filled."""
        run = load_run(expert_root)
        expert_options, _ = split_env_kwargs(run.env_kwargs)
        kwargs = {**config["env_kwargs"], "privileged": True, "split": "train", "num_threads": self.num_threads}
        if expert_options.get("shape_codes"):
            kwargs["shape_codes"] = str(resolve_run_path(expert_options["shape_codes"], run.root).resolve())
        return build_env(STUDENT_ENV_ID, config["distill"]["n_envs"], self.seed, kwargs, object_set=objset)

    def _eval_env(self, config: dict[str, Any], objset: ObjectSet, split: str) -> VecEnv:
        """``eval_trials`` envs per object of at most ``eval_max_objects`` of the split's objects, spread over its
        categories (``evaluation.split_env``), privileged part zeroed."""
        budget = config["distill"]
        kwargs = {**config["env_kwargs"], "num_threads": self.num_threads}
        return split_env(STUDENT_ENV_ID, kwargs, split, budget["eval_trials"], budget["eval_max_objects"],
                         object_set=objset)  # fmt: skip

    # ------------------------------------------------------------------ the run
    def run(self) -> Path:
        """Train (or continue) and save the student; returns its path."""
        import torch as th
        from imitation.algorithms import bc
        from tqdm import tqdm

        from resdex_sb3.dagger import (ConstantBetaSchedule, DeterministicMSELoss, PrivilegedExpertPolicy,
                                       RingBufferDAggerTrainer, StepLogger, TransitionRingBuffer)  # fmt: skip
        from resdex_sb3.policies import VisionStudentPolicy

        th.set_num_threads(self.num_threads)
        # imitation's BC logs float(loss) of the graph-carrying loss tensor; harmless, and once per round
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
        config = self.config()
        budget = config["distill"]
        progress_path = self.out / PROGRESS_FILE
        if finished_rounds(self.out) >= budget["rounds"]:
            print(f"[distill] {self.out}: finished ({budget['rounds']} rounds), nothing to do")
            return self.student_path
        objset = load_object_set(config["env_kwargs"]["object_set"], config["env_kwargs"].get("data_dir"))
        warn_other_data(self.out, config.setdefault(OBJECT_SET_CHECKSUM, objset.checksum), objset)
        self._write_config(config)
        expert_root = resolve_run_path(config["expert"], self.out)
        venv = self._train_env(config, objset, expert_root)
        expert = PrivilegedExpertPolicy.from_run(expert_root, venv)
        lr = float(budget["learning_rate"])
        student = VisionStudentPolicy(venv.observation_space, venv.action_space, lambda _: lr,
                                      **budget["policy_kwargs"])  # fmt: skip
        n_envs = venv.num_envs
        capacity = n_envs * budget["buffer_steps"]
        batch_size = max(1, capacity // budget["n_minibatches"])
        logger = StepLogger(self.out / "tb", ["tensorboard"])
        rng = np.random.default_rng(self.seed)
        buffer = TransitionRingBuffer(capacity, venv.observation_space.shape[0], venv.action_space.shape[0],
                                      batch_size, seed=self.seed)  # fmt: skip
        trainer_bc = bc.BC(observation_space=venv.observation_space, action_space=venv.action_space, rng=rng,
                           policy=student, batch_size=batch_size, optimizer_kwargs={"lr": lr}, ent_weight=0.0,
                           l2_weight=0.0, device="cpu", custom_logger=logger)  # fmt: skip
        trainer_bc.loss_calculator = DeterministicMSELoss()
        trainer = RingBufferDAggerTrainer(venv=venv, scratch_dir=self.scratch, rng=rng, bc_trainer=trainer_bc,
                                          buffer=buffer, beta_schedule=ConstantBetaSchedule(budget["beta"]),
                                          custom_logger=logger)  # fmt: skip
        counters = {"env_steps": 0, "seconds": 0.0, "last_eval": None}
        if (self.scratch / "checkpoint-latest.pt").exists():
            counters.update(trainer.load_trainer_state())
            print(f"[distill] resuming {self.out} at round {trainer.round_num} ({counters['env_steps']:,} env steps)")
        # the rounds behind the saved student, which the periodic progress records carry on unchanged: a run
        # extended and killed before its new student is saved is not finished
        counters["student_rounds"] = finished_rounds(self.out)
        eval_envs: dict[str, VecEnv] = {}
        outcomes: deque[float] = deque(maxlen=SUCCESS_WINDOW)
        collector = trainer.create_trajectory_collector()
        obs = collector.reset()
        began = time.perf_counter() - counters["seconds"]
        bar = tqdm(total=budget["rounds"], initial=trainer.round_num, unit="round", disable=not self.progress,
                   desc=f"DAgger {self.mode}", dynamic_ncols=True)  # fmt: skip
        while trainer.round_num < budget["rounds"]:
            collector = trainer.create_trajectory_collector()  # this round's beta
            tick = time.perf_counter()
            online = []
            for _ in range(budget["steps_per_round"]):
                labels = expert.predict(obs, deterministic=True)[0]
                obs, _, dones, infos = collector.step(labels)
                student_actions = trainer.last_student_actions
                if student_actions is not None and student_actions.shape == labels.shape:  # the student drove all
                    online.append(float(np.mean((student_actions - labels) ** 2)))
                outcomes.extend(float(infos[i].get("is_success", False)) for i in np.flatnonzero(dones))
            counters["env_steps"] += budget["steps_per_round"] * n_envs
            collect_s = time.perf_counter() - tick
            round_num = trainer.round_num
            if round_num % budget["eval_every_rounds"] == 0:
                counters["last_eval"] = self._evaluate(config, objset, eval_envs, student, logger)
            logger.step = counters["env_steps"]
            logger.record("dagger/round", round_num)
            logger.record("dagger/beta", collector.beta)
            logger.record("dagger/buffer_rows", len(buffer))
            if online:
                logger.record("dagger/online_mse", float(np.mean(online)))
            if outcomes:
                logger.record("charts/success_rate", float(np.mean(outcomes)))
            tick = time.perf_counter()
            trainer.extend_and_update({"n_epochs": budget["n_epochs"], "log_rollouts_venv": None,
                                       "progress_bar": False, "log_interval": 10**9})  # fmt: skip
            train_s = time.perf_counter() - tick
            counters["seconds"] = time.perf_counter() - began
            if trainer.round_num % budget["checkpoint_every_rounds"] == 0 or trainer.round_num == budget["rounds"]:
                trainer.save_trainer(counters)
                self._write_progress(progress_path, trainer.round_num, counters)
            bar.set_postfix(mse=f"{np.mean(online) if online else float('nan'):.4f}",
                            success=f"{np.mean(outcomes) if outcomes else 0:.2f}",
                            collect=f"{collect_s:.1f}s", train=f"{train_s:.1f}s")  # fmt: skip
            bar.update(1)
            # the time/ scalars go out with the next round's dump
            logger.record("time/collect_s", collect_s)
            logger.record("time/train_s", train_s)
            logger.record("time/env_steps_per_s", counters["env_steps"] / max(counters["seconds"], 1e-9))
        bar.close()
        counters["last_eval"] = self._evaluate(config, objset, eval_envs, student, logger)  # the final student
        logger.step = counters["env_steps"]
        logger.dump()
        atomic_write(self.student_path, lambda tmp: student.save(str(tmp)))
        counters["student_rounds"] = trainer.round_num
        self._write_progress(progress_path, trainer.round_num, counters)
        for env in (venv, *eval_envs.values()):
            env.close()
        print(f"[distill] student: {self.student_path}  ({counters['env_steps']:,} labelled env steps, "
              f"{counters['seconds'] / 60:.1f} min)")  # fmt: skip
        return self.student_path

    def _evaluate(self, config: dict[str, Any], objset: ObjectSet, eval_envs: dict[str, VecEnv], student: BasePolicy,
                  logger: Logger) -> dict[str, Any]:  # fmt: skip
        """Student success per split with the evaluation protocol (privileged part zeroed), logged as eval/*."""
        budget = config["distill"]
        results = {}
        for split in SPLITS:
            if not objset.split(split):
                continue
            if split not in eval_envs:
                eval_envs[split] = self._eval_env(config, objset, split)
            env = eval_envs[split]
            outcomes = run_episodes(env, lambda o: student.predict(o, deterministic=True)[0],
                                    env.get_attr("config")[0].episode_length, seed=EVAL_SEED)  # fmt: skip
            result = per_object_outcomes(env.get_attr("objects"), outcomes, budget["eval_trials"])
            logger.record(f"eval/sustained_{split}", result.mean_sustained)
            logger.record(f"eval/success_{split}", result.mean_success)
            logger.record(f"eval/held_{split}", result.mean_held)
            results[split] = {"sustained": result.mean_sustained, "success": result.mean_success,
                              "held": result.mean_held, "objects": len(result.objects)}  # fmt: skip
        return results

    @staticmethod
    def _write_progress(path: Path, rounds: int, counters: dict[str, Any]) -> None:
        atomic_write_json(path, {"rounds_done": rounds, **counters})


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--expert", required=True, help="finished ResDexHyper run folder (the hyper-policy)")
    parser.add_argument("--mode", required=True, choices=CLOUD_MODES, help="point-cloud mode of the student")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/vision-<mode>)")
    parser.add_argument("--preset", choices=PRESETS, default="cpu", help="budget in zoo_configs/distill.yml")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-threads", type=positive_int, default=1, help="physics and torch threads")
    parser.add_argument("--rounds", type=positive_int, default=None, help="override the preset's number of rounds")
    parser.add_argument("--n-envs", type=positive_int, default=None,
                        help="override the preset's env count (new runs only)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("rounds", args.rounds), ("n_envs", args.n_envs)) if v is not None}
    run = Distillation(args.expert, args.mode, args.out or Path(f"runs/vision-{args.mode}"), args.preset,
                       args.data_dir, args.seed, args.num_threads, overrides, not args.no_progress)  # fmt: skip
    run.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
