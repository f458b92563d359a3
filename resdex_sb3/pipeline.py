"""``python -m resdex_sb3.pipeline --preset smoke|cpu|paper [--out DIR]``: the whole method, resumable.

Stages: objects -> shape codes and k clusters -> one geometry-unaware base policy per cluster representative
that passes the base gate (else the next-nearest member; a cluster with no passing member is dropped)
-> hyper-policy stage 1 (grasp-proposal reward) -> stage 2 (loosened reward, initialised from stage 1's best
checkpoint and its normalisation statistics)
-> the from-scratch multi-task PPO baseline (same two stages and budget, no base policies), seed by seed -> the
vision students of the final hyper-policy (DAgger, ``gt_pose`` and ``camera`` clouds; ``zoo_configs/distill.yml``)
-> ``results.md`` with learning curves. Every base, hyper-policy, baseline and student is evaluated on the
three splits right after it is trained (``eval-<policy>-<split>`` stages).

Every training stage is its own ``resdex_sb3.train`` process writing atomic checkpoints; a stage whose final
model exists is skipped, and one with only a checkpoint continues from it. ``pipeline.json`` records each
stage's status and wall time. Budgets are in ``zoo_configs/pipeline.yml``; PPO settings in ``ppo.yml``.

The stages form a graph (:meth:`Pipeline.stage_graph`), run one after the other in the order above, or with
``--ray [auto|local|ADDRESS]`` every stage whose inputs are ready at once on a Ray cluster
(``resdex_sb3.ray_executor``; ``--out`` and the object data on a filesystem every node shares).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from envs.files import atomic_write_bytes, atomic_write_json, file_lock, read_json
from envs.objects.spec import SPLITS
from envs.vision import CLOUD_MODES as VISION_MODES
from resdex_sb3.errors import UserError, cli_main
from resdex_sb3.presets import PIPELINE_CONFIG, load_distill_preset, load_pipeline_preset
from resdex_sb3.run_folder import (checkpoint_steps, continuation_start, continuation_steps, finished_rounds,
                                   load_run, model_steps, passed_gate)
from resdex_sb3.stage import StageCall, StopAfterStage
from resdex_sb3.stage_command import TRAIN_ARGS_ENV, run_stage_command
from resdex_sb3.stage_graph import StageGraph

def seed_suffix(seed: int, seeds: list[int]) -> str:
    """Run-name suffix of a hyper-policy or baseline seed: none for the first (the runs the students and the
    README use), ``-seed<N>`` for the others."""
    return "" if seed == seeds[0] else f"-seed{seed}"


#: the run the vision students distil: the first seed's method (the first seed's runs carry no seed suffix)
EXPERT_RUN = "hyper"


class Pipeline:
    """Runs and records the stages of one preset in one output folder.

    :param preset: ``smoke``, ``cpu`` or ``paper``.
    :param out: output folder (every run, the results and ``pipeline.json``).
    :param data_dir: object data directory (default: ``$RESDEX_DATA`` or ``data/``).
    :param seed: seed of every stage.
    :param config: the pipeline YAML (``zoo_configs/pipeline.yml``).
    :param until: stop once the stage of this name (``base-3``, ``hyper``, ...) is complete; ``None`` runs all.
    :param overrides: settings that replace the preset's (the ablation grid's own-clustering variants set ``k``).
    """

    #: the record of every stage, in ``out``; each write holds ``<file>.lock`` and changes one stage's record, so
    #: commands sharing the folder keep each other's records
    STATUS_FILE = "pipeline.json"

    def __init__(self, preset: str, out: Path, data_dir: str | None = None, seed: int = 0,
                 config: Path = PIPELINE_CONFIG, until: str | None = None,
                 overrides: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.preset, self.out, self.data_dir, self.seed, self.until = preset, out, data_dir, seed, until
        self.cfg = load_pipeline_preset(preset, config)
        unknown = sorted(set(overrides or {}) - set(self.cfg))
        if unknown:
            raise ValueError(f"unknown pipeline setting(s) {unknown}; known: {sorted(self.cfg)}")
        self.cfg.update(overrides or {})
        #: extra arguments of every training command (``$RESDEX_TRAIN_ARGS``, e.g. ``--save-freq 100000``)
        self.train_args = shlex.split(os.environ.get(TRAIN_ARGS_ENV, ""))
        self.status_path = out / self.STATUS_FILE
        self.status: dict[str, Any] = {}
        if self.status_path.exists():
            self.status = read_json(self.status_path, "pipeline status")

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, stage: str, **info: Any) -> None:
        # Two commands may share an output folder (the grid makes its bases through the pipeline's records while
        # the pipeline runs, say): under the lock, re-read the file and change only this stage's record, so that
        # neither drops what the other recorded.
        with file_lock(self.status_path.with_name(self.status_path.name + ".lock")):
            entry = {**self.status.get(stage, {}), **info}
            on_disk = read_json(self.status_path, "pipeline status") if self.status_path.exists() else {}
            self.status = {**self.status, **on_disk, stage: entry}
            atomic_write_json(self.status_path, self.status)

    def _timed(self, stage: str, fn, *args: Any) -> Any:
        """Run a stage unless it finished with the same inputs (a grown budget, say, reruns and continues it)."""
        reusable, result = self.reusable(stage, args)
        if reusable:
            print(f"[pipeline] {stage}: done, skipped")
            self._stop_if_until(stage)
            return result
        print(f"[pipeline] {stage}: running")
        result = self.run_recorded(stage, fn, args)
        self._stop_if_until(stage)
        return result

    # The pieces of ``_timed``, also used by an executor that runs stages itself or elsewhere (``ray_executor``)
    # and records their outcome here: only the process that owns the ``Pipeline`` writes ``pipeline.json``.
    def run_recorded(self, stage: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``fn(*args)`` here, recorded as ``stage``: running, then done with its result, or failed with the error
        (re-raised; Ctrl-C too: its time counts toward the next attempt)."""
        began = time.perf_counter()
        previous = self.begin(stage)
        try:
            result = fn(*args)
        except BaseException as err:
            self.fail(stage, previous, repr(err), time.perf_counter() - began)
            raise
        self.finish(stage, previous, args, result, time.perf_counter() - began)
        return result

    def _inputs_key(self, args: tuple[Any, ...]) -> str:
        """What decides a stage's output: the preset's budgets and the stage's arguments."""
        return json.dumps([self.cfg, [str(a) for a in args]], sort_keys=True, default=str)

    def reusable(self, stage: str, args: tuple[Any, ...]) -> tuple[bool, Any]:
        """``(True, its result)`` when ``stage`` finished before with the same inputs, else ``(False, None)``."""
        previous = self.status.get(stage, {})
        if previous.get("status") == "done" and previous.get("inputs") == self._inputs_key(args):
            return True, previous.get("result")
        return False, None

    def begin(self, stage: str) -> dict[str, Any]:
        """Record ``stage`` as running; returns a copy of its previous record (the record below updates it)."""
        previous = dict(self.status.get(stage, {}))
        self._record(stage, status="running", seconds=self._spent_before(previous))
        return previous

    @staticmethod
    def _spent_before(previous: dict[str, Any]) -> float:
        # Wall time adds up over attempts of one stage that ended in an error or Ctrl-C; a stage that finished
        # before (with other inputs) starts its count again, unless it finds its output complete and reuses it
        # (a budget of another stage changed, say): then its time stays what producing that output took.
        return 0.0 if previous.get("status") == "done" else previous.get("seconds", 0.0)

    def fail(self, stage: str, previous: dict[str, Any], error: str, elapsed: float) -> None:
        """Record ``stage`` as failed with ``error`` after ``elapsed`` seconds of this attempt."""
        self._record(stage, status="failed", error=error, seconds=round(self._spent_before(previous) + elapsed, 1))

    def finish(self, stage: str, previous: dict[str, Any], args: tuple[Any, ...], result: Any, elapsed: float) -> None:
        """Record ``stage`` as done with ``result`` after ``elapsed`` seconds of this attempt."""
        seconds = self._spent_before(previous) + elapsed
        if isinstance(result, dict) and result.get("reused") and previous.get("status") == "done":
            seconds = previous.get("seconds", seconds)
        self._record(stage, status="done", seconds=round(seconds, 1), result=result, inputs=self._inputs_key(args))

    def _stop_if_until(self, stage: str) -> None:
        if stage == self.until:
            raise StopAfterStage(stage)

    # ------------------------------------------------------------------ stages
    def run(self, executor: Any = None) -> None:
        """Run every stage of :meth:`stage_graph`: one after the other in its order (``executor`` None: the first
        error stops the run), or through ``executor.run(self, graph)`` (``resdex_sb3.ray_executor.RayExecutor``:
        independent stages at once on a Ray cluster)."""
        self.run_graph(self.stage_graph(), executor)
        print(f"[pipeline] results: {self.out / 'results.md'}")

    def run_graph(self, graph: StageGraph, executor: Any = None) -> None:
        """Run ``graph``'s stages (of this pipeline) serially, or through ``executor`` (see :meth:`run`)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if executor is None:
            graph.run_serial(self._timed)
        else:
            executor.run(self, graph)

    def bases_graph(self) -> StageGraph:
        """The stages up to the last base: the object set, the shape codes and clusters, and the bases."""
        return self.stage_graph().until(f"base-{self.cfg['k'] - 1}")

    def passed_bases(self) -> list[str] | None:
        """Run names of the bases that passed their gate, in cluster order, as ``pipeline.json`` records them;
        None until every base stage is done."""
        records = [self.status.get(f"base-{i}", {}) for i in range(self.cfg["k"])]
        shape = self.status.get("shape", {})
        if shape.get("status") != "done":
            return None
        clusters = len(shape["result"]["candidates"])
        if any(r.get("status") != "done" for r in records[:clusters]):
            return None
        return [r["result"]["run"] for r in records[:clusters] if r["result"]["passed"]]

    def stage_graph(self) -> StageGraph:
        """The stages, in the serial order, each with the stages it depends on: objects -> shape -> base-i (one per
        cluster) -> its evaluations; per seed, the method (hyper-stage1 after every base -> hyper -> its
        evaluations) and the baseline (baseline-stage1 after the shape codes alone -> baseline -> its
        evaluations); the vision students after the seed-0 method's ``hyper`` -> their evaluations; the report
        after every evaluation."""
        cfg, out = self.cfg, self.out
        set_name = cfg["object_set"]
        graph = StageGraph()
        graph.add("objects", [], lambda r: StageCall(self._objects, (set_name,), "objects"))
        graph.add("shape", ["objects"], lambda r: StageCall(self._shape, (set_name,), "shape"))
        base_nodes = [f"base-{i}" for i in range(cfg["k"])]  # the clustering gives at most k clusters

        def base(i: int) -> Any:
            def build(r: dict[str, Any]) -> StageCall | None:
                candidates = r["shape"]["candidates"]
                if i >= len(candidates):
                    return None
                return StageCall(self._train_base, (i, set_name, candidates[i]), f"base-{i}", "train",
                                 out / f"base-{i}")  # fmt: skip
            return build

        for i, node in enumerate(base_nodes):
            graph.add(node, ["shape"], base(i))

        def passed_bases(r: dict[str, Any]) -> list[str]:
            return [r[node]["run"] for node in base_nodes if r.get(node) and r[node]["passed"]]

        evaluations = []  # every base alone on every split: what the mixture must beat

        def evaluate(node: str, split: str, fixed_run: str | None = None, label: str | None = None) -> Any:
            def build(r: dict[str, Any]) -> StageCall | None:
                chosen = r.get(node)
                if fixed_run is None and not (chosen and chosen["passed"]):
                    return None
                run_name = fixed_run or chosen["run"]
                return StageCall(self._evaluate, (run_name, split), f"eval-{label or run_name}-{split}",
                                 label=f"{label or run_name}/{split}")  # fmt: skip
            return build

        for node in base_nodes:
            for split in SPLITS:
                graph.add(f"eval-{node}-{split}", [node], evaluate(node, split))
                evaluations.append(f"eval-{node}-{split}")
        codes = "../shape/codes.json"  # relative to each run folder, so the output folder can move
        hyper_kwargs = {"object_set": set_name, "split": "train", "shape_codes": codes}
        for seed in cfg["seeds"]:  # seed by seed, so that the method and its baseline compare early (serially)
            for label, prefix, method in (("method", "hyper", True), ("baseline", "baseline", False)):
                if not method and not cfg["baseline"]:
                    continue
                suffix = seed_suffix(seed, cfg["seeds"])
                stage1, stage2 = f"{prefix}-stage1{suffix}", prefix + suffix
                preset = self.preset if method else f"baseline-{self.preset}"  # ppo.yml's multi-task baseline

                def first(r: dict[str, Any], stage1: str = stage1, method: bool = method, preset: str = preset,
                          seed: int = seed) -> StageCall:  # fmt: skip
                    kwargs = dict(hyper_kwargs)
                    if method:
                        bases = passed_bases(r)
                        if not bases:
                            raise UserError(f"no base policy passed the gate {cfg['base_gate']} "
                                            f"(see {self.status_path})")  # fmt: skip
                        kwargs["base_models"] = [f"../{run}" for run in bases]
                    return StageCall(self._train, ("ResDexHyper", out / stage1, cfg["stage1_timesteps"],
                                                   {**kwargs, "reward_mode": "stage1"}, None, preset, seed),
                                     stage1, "train", out / stage1)  # fmt: skip

                def second(r: dict[str, Any], stage1: str = stage1, stage2: str = stage2, method: bool = method,
                           preset: str = preset, seed: int = seed) -> StageCall:  # fmt: skip
                    kwargs = dict(hyper_kwargs)
                    if method:  # the bases stage 1 got (it would not have run without one)
                        kwargs["base_models"] = [f"../{run}" for run in passed_bases(r)]
                    return StageCall(self._train, ("ResDexHyper", out / stage2, cfg["stage2_timesteps"],
                                                   {**kwargs, "reward_mode": cfg["stage2_reward"]},
                                                   self._stage2_init(stage1), preset, seed),
                                     stage2, "train", out / stage2)  # fmt: skip

                graph.add(stage1, base_nodes if method else ["shape"], first)
                graph.add(stage2, [stage1], second)
                for split in SPLITS:
                    graph.add(f"eval-{label}{suffix}-{split}", [stage2],
                              evaluate(stage2, split, stage2, label + suffix))  # fmt: skip
                    evaluations.append(f"eval-{label}{suffix}-{split}")
        students = [f"vision-{mode}" for mode in VISION_MODES]  # DAgger of the method's final hyper-policy
        budget = {**load_distill_preset(self.preset), "rounds": cfg["distill_rounds"]}
        for mode, student in zip(VISION_MODES, students):
            graph.add(student, [EXPERT_RUN], lambda r, mode=mode, student=student: StageCall(
                self._distill, (mode, budget), student, "train", out / student))  # fmt: skip
        for student in students:
            for split in SPLITS:
                graph.add(f"eval-{student}-{split}", [student], evaluate(student, split, student, student))
                evaluations.append(f"eval-{student}-{split}")

        def report(r: dict[str, Any]) -> StageCall:
            calls = [graph[node].build(r) for node in evaluations]
            results = {call.label: r[node] for node, call in zip(evaluations, calls) if call is not None}
            return StageCall(self._report, (results,), "report", "driver")

        graph.add("report", evaluations, report)
        return graph

    def report_so_far(self) -> Path:
        """``results.md`` from every evaluation finished so far (for a pipeline still under way, or stopped with
        ``--until``); the full run writes it as its last stage."""
        results = {}
        for stage, record in self.status.items():
            if stage.startswith("eval-") and record.get("status") == "done":
                label, split = stage.removeprefix("eval-").rsplit("-", 1)  # split names hold no hyphen
                results[f"{label}/{split}"] = record["result"]
        self._report(results)
        return self.out / "results.md"

    def _objects(self, set_name: str) -> dict[str, Any]:
        from envs.objects.build import build_object_set
        from envs.objects.catalog import load_object_set
        from envs.objects.progress import progress_bars

        # The one stage that builds (or finishes, or repairs) the set; every later stage only loads it.
        build_object_set(set_name, self.data_dir, progress_bars())
        objset = load_object_set(set_name, self.data_dir)
        return {"objects": len(objset.objects), "proposal_share": objset.report.get("proposal_share")}

    def _shape(self, set_name: str) -> dict[str, Any]:
        from resdex_sb3.shape.clusters import run_clustering
        from resdex_sb3.shape import EncoderTrainConfig

        config = EncoderTrainConfig(epochs=self.cfg["encoder_epochs"])
        result, _ = run_clustering(self.cfg["k"], set_name, self.data_dir, self.out / "shape", self.seed, config)
        attempts = self.cfg["base_attempts"]
        return {"candidates": [[m["name"] for m in c["members"][:attempts]] for c in result["clusters"]]}

    def _train_base(self, index: int, set_name: str, members: list[str]) -> dict[str, Any]:
        """The reference's rule: a base on the member nearest the centre; while it fails the gate, another base on
        the next-nearest member. Returns the first attempt that passes, or ``passed: False`` (the cluster is
        dropped) with every attempt's scores as the evidence."""
        from resdex_sb3.run_evaluation import evaluate_run

        gate = self.cfg["base_gate"]
        tried, reused = [], True
        for attempt, name in enumerate(members):
            run_name = f"base-{index}" if attempt == 0 else f"base-{index}-try{attempt}"
            trained = self._train("ResDexBase", self.out / run_name, self.cfg["base_timesteps"],
                                  {"object_set": set_name, "objects": [name], "reward_mode": self.cfg["base_reward"]},
                                  None)  # fmt: skip
            reused = reused and trained.get("reused", False)
            result = evaluate_run(self.out / run_name, "train", self.cfg["base_eval_trials"], self.data_dir,
                                  only=[name])  # fmt: skip
            scores = {"success": result.mean_success, "sustained": result.mean_sustained, "held": result.mean_held}
            passed = all(scores[key] >= bound for key, bound in gate.items())
            tried.append({"run": run_name, "object": name, "timesteps": trained["timesteps"], "passed": passed,
                          **scores})  # fmt: skip
            verdict = "passes" if passed else "fails"
            print(f"[pipeline] base-{index}: {name} any-time {100 * scores['success']:.0f} %, held "
                  f"{100 * scores['held']:.0f} % on itself: {verdict} the gate {gate}")  # fmt: skip
            if passed:
                return {**tried[-1], "attempts": tried, "reused": reused}
        print(f"[pipeline] base-{index}: no member passed; the cluster is dropped")
        return {"run": None, "passed": False, "attempts": tried, "reused": reused}

    def _train(self, env: str, run: Path, timesteps: int, env_kwargs: dict[str, Any], init: Path | None,
               preset: str | None = None, seed: int | None = None, algo: str = "ppo") -> dict:  # fmt: skip
        final = run / f"{env}-v0.zip"
        done = checkpoint_steps(run)
        target = timesteps + (model_steps(init) if init is not None else 0)
        trained_before = final.exists() or done > 0  # a killed run leaves only its checkpoint
        if trained_before and not self._same_setup(run, env_kwargs):
            stale = run.with_name(f"{run.name}.stale-{int(time.time())}")
            print(f"[pipeline] {run} was trained with other inputs (bases, objects or reward): moved to {stale}")
            run.rename(stale)
            done = 0
        if final.exists() and (done >= target or passed_gate(run)):
            return {"run": str(run), "timesteps": done, "reused": True}
        if self.data_dir:
            env_kwargs = {**env_kwargs, "data_dir": self.data_dir}
        command = [sys.executable, "-m", "resdex_sb3.train", "--algo", algo, "--env", env,
                   "--preset", preset or self.preset, "--run-dir", str(run),
                   "--seed", str(self.seed if seed is None else seed),
                   "-tb", str(run / "tb"), "--env-kwargs", *[f"{k}:{v!r}" for k, v in env_kwargs.items()]]  # fmt: skip
        if init is not None and not done:  # a new stage 2: from stage 1's model, `timesteps` more
            command += ["-i", str(init), "-n", str(timesteps)]
        else:  # a new run, or a stopped one continued from its last checkpoint, up to the stage's total
            command += ["--resume", "-n", str(target)]
        command += self.train_args
        print("[pipeline] " + " ".join(command))
        run_stage_command(command)
        return {"run": str(run), "timesteps": checkpoint_steps(run)}

    def _distill(self, mode: str, budget: dict[str, Any]) -> dict:
        """The ``mode`` vision student of ``EXPERT_RUN`` (``resdex_sb3.distill``; it resumes from its own
        checkpoint)."""
        run = self.out / f"vision-{mode}"
        command = [sys.executable, "-m", "resdex_sb3.distill", "--expert", str(self.out / EXPERT_RUN),
                   "--mode", mode, "--preset", self.preset, "--out", str(run), "--seed", str(self.seed),
                   "--rounds", str(budget["rounds"])]  # fmt: skip
        if self.data_dir:
            command += ["--data-dir", self.data_dir]
        if finished_rounds(run) >= budget["rounds"]:
            return {"run": str(run), "reused": True}
        print("[pipeline] " + " ".join(command))
        run_stage_command(command)
        return {"run": str(run)}

    @staticmethod
    def _same_setup(run: Path, env_kwargs: dict[str, Any]) -> bool:
        """Whether a finished run used the inputs that decide what it learned."""
        saved = load_run(run).env_kwargs
        return all(saved.get(k) == env_kwargs.get(k) for k in ("objects", "base_models", "reward_mode", "object_set")
                   if k in env_kwargs or k in ("objects", "base_models"))  # fmt: skip

    def _stage2_init(self, stage1: str) -> Path:
        """Stage 2 starts from stage 1 (the reference forgot to): its best checkpoint, else its final model."""
        return continuation_start(self.out / stage1, "ResDexHyper-v0")

    def _evaluate(self, run_name: str, split: str) -> dict[str, Any]:
        from resdex_sb3.run_evaluation import evaluate_run, result_json

        run = self.out / run_name
        result = evaluate_run(run, split, self.cfg["eval_trials"], self.data_dir)
        summary = result_json(result, split, str(run))
        path = self.out / "eval" / f"{run_name}-{split}.json"
        atomic_write_json(path, summary)
        keys = ("sustained", "sustained_ci95", "success", "ci95", "held", "held_ci95", "num_objects")
        return {"file": str(path.relative_to(self.out)), **{k: summary[k] for k in keys}}

    def _report(self, results: dict[str, Any]) -> dict[str, Any]:
        lines = [f"# ResDex pipeline, preset `{self.preset}`", "",
                 f"Object set `{self.cfg['object_set']}`, {self.cfg['eval_trials']} trials per object. **Sustained** "
                 "(the headline): the object stayed within 5 cm of the goal for 10 consecutive steps; any-time: within "
                 "5 cm at some step (the paper's, gamed by flying through); held: within 5 cm on the last step. Mean "
                 "over objects with a 95 % Wilson interval over objects.", "",
                 "| policy | split | objects | sustained % (95 % CI) | any-time % (95 % CI) | held % (95 % CI) |",
                 "|---|---|---|---|---|---|"]  # fmt: skip

        def cell(r: dict[str, Any], key: str, ci: str) -> str:
            return f"{100 * r[key]:.1f} ({100 * r[ci][0]:.1f}-{100 * r[ci][1]:.1f})"

        for key, r in results.items():
            label, split = key.split("/")
            lines.append(f"| {label} | {split} | {r['num_objects']} | {cell(r, 'sustained', 'sustained_ci95')} | "
                         f"{cell(r, 'success', 'ci95')} | {cell(r, 'held', 'held_ci95')} |")  # fmt: skip
        lines += self._seed_table(results)
        lines += self._paired_table(results)
        stage_times = {k: v.get("seconds") for k, v in self.status.items() if "seconds" in v}
        lines += ["", "| stage | wall time (s) |", "|---|---|"] + [f"| {k} | {v} |" for k, v in stage_times.items()]
        lines += self._budget_table()
        lines += self._budget_study()
        lines += [""] + [f"![{plot.stem}]({plot.name})" for plot in self._plot_curves()]
        atomic_write_bytes(self.out / "results.md", ("\n".join(lines) + "\n").encode())
        return {"table": str(self.out / "results.md")}

    def _base_attempts(self) -> list[dict[str, Any]]:
        """Every base training the records hold (each cluster's members tried, passed or not)."""
        records = [v for k, v in self.status.items() if k.startswith("base-") and isinstance(v.get("result"), dict)]
        return [a for r in records for a in r["result"].get("attempts", [])]

    def _own_steps(self, stage1: str, final: str) -> int:
        """Env steps a hyper-policy or baseline trained itself, bases aside: all of stage 1, and what ``final``
        trained on from the stage-1 checkpoint it started from."""
        return checkpoint_steps(self.out / stage1) + checkpoint_steps(self.out / final) - \
            continuation_steps(self.out / stage1)

    def _budget_table(self) -> list[str]:
        """Env steps and training wall time behind each final policy, the bases' included for the method (every
        base attempt counts, passed or not). Times come from each run's tensorboard events, so they hold whoever
        started the run; evaluations are not included."""
        from resdex_sb3.curves import training_seconds

        attempts = self._base_attempts()
        base_steps = sum(a.get("timesteps", 0) for a in attempts)
        base_seconds = sum(training_seconds(self.out / a["run"]) for a in attempts)
        lines = ["", "| policy | env steps | of which bases | wall time (h) |", "|---|---|---|---|"]
        for prefix, with_bases in (("hyper", True), ("baseline", False)):
            for seed in self.cfg["seeds"]:
                final = prefix + seed_suffix(seed, self.cfg["seeds"])
                if not (self.out / final).is_dir():
                    continue
                stage1 = f"{prefix}-stage1{seed_suffix(seed, self.cfg['seeds'])}"
                own = self._own_steps(stage1, final)
                seconds = training_seconds(self.out / stage1) + training_seconds(self.out / final)
                extra_steps, extra_seconds = (base_steps, base_seconds) if with_bases else (0, 0.0)
                lines.append(f"| {final} | {own + extra_steps:,} | {extra_steps:,} | "
                             f"{(seconds + extra_seconds) / 3600:.2f} |")  # fmt: skip
        return lines

    def _budget_study(self) -> list[str]:
        """The seed-0 method's stage 2 and the baseline continued to larger budgets (``tools/extend_budget.sh``:
        runs ``<run>-2x``, ``<run>-4x``), evaluated like the rest: sustained, any-time and held on every split
        against the total env steps behind each (the method's bases included)."""
        base_steps = sum(a.get("timesteps", 0) for a in self._base_attempts())
        rows = []
        for prefix, with_bases in (("hyper", True), ("baseline", False)):
            stage1 = f"{prefix}-stage1{seed_suffix(self.cfg['seeds'][0], self.cfg['seeds'])}"
            for scale in ("", "-2x", "-4x"):
                run, cells = prefix + scale, []
                for split in SPLITS:
                    path = self.out / "eval" / f"{run}-{split}.json"
                    if not path.is_file():
                        break
                    r = read_json(path, "evaluation summary")
                    cells.append(f"{100 * r['sustained']:.1f} / {100 * r['success']:.1f} / {100 * r['held']:.1f}")
                if len(cells) < len(SPLITS) or not (self.out / run).is_dir():
                    continue
                total = self._own_steps(stage1, run) + (base_steps if with_bases else 0)
                rows.append(f"| {run} | {total:,} | " + " | ".join(cells) + " |")
        if len(rows) < 2:
            return []
        return ["", "Budget study: the seed-0 method's stage 2 and the baseline trained on (`tools/extend_budget.sh`), "
                "evaluated like the rest. Cells: sustained / any-time / held, %.", "",
                "| run | total env steps | train | unseen_obj | unseen_cat |", "|---|---|---|---|---|", *rows]  # fmt: skip

    def _paired_table(self, results: dict[str, Any]) -> list[str]:
        """The method against its best base alone (the best on each split) and against the baseline: the paired
        per-object difference of sustained success (same objects, same seeds) with its 95 % interval."""
        from resdex_sb3.run_evaluation import paired_metrics

        lines = ["", "Paired per-object differences of sustained success (points, 95 % t-interval over objects):", "",
                 "| comparison | split | difference | 95 % CI |", "|---|---|---|---|"]  # fmt: skip
        for split in SPLITS:
            method = results.get(f"method/{split}")
            if method is None:
                continue
            bases = {k.split("/")[0]: r for k, r in results.items()
                     if k.startswith("base-") and k.endswith(f"/{split}")}  # fmt: skip
            rivals = {}
            if bases:
                best = max(bases, key=lambda name: bases[name]["sustained"])
                rivals[f"method - best base ({best})"] = bases[best]
            if f"baseline/{split}" in results:
                rivals["method - baseline"] = results[f"baseline/{split}"]
            for label, rival in rivals.items():
                _, paired = paired_metrics(self.out / method["file"], self.out / rival["file"])
                mean, low, high = paired["sustained"][2:]
                lines.append(f"| {label} | {split} | {100 * mean:+.1f} | {100 * low:+.1f} .. {100 * high:+.1f} |")
        return lines if len(lines) > 5 else []

    def _seed_table(self, results: dict[str, Any]) -> list[str]:
        """Policies run over several seeds: the mean over seeds, its range, and the 95 % interval over objects of
        the seed-averaged per-object rates (from the evaluation JSONs)."""
        from resdex_sb3.evaluation import confidence_interval

        seeds = self.cfg["seeds"]
        if len(seeds) < 2:
            return []
        lines = ["", f"Over seeds {seeds}: mean over seeds (min-max over seeds), and the 95 % interval over objects "
                     "of the seed-averaged per-object rate.", "",
                 "| policy | split | seeds | sustained % | any-time % | held % |",
                 "|---|---|---|---|---|---|"]  # fmt: skip
        for label in ("method", "baseline"):
            for split in SPLITS:
                found = [results.get(f"{label}{seed_suffix(s, seeds)}/{split}") for s in seeds]
                found = [r for r in found if r is not None]
                if len(found) < 2:
                    continue
                rows = [{o["object"]: o for o in read_json(self.out / r["file"], "evaluation summary")["objects"]}
                        for r in found]  # fmt: skip
                if any(row.keys() != rows[0].keys() for row in rows):
                    raise ValueError(f"{', '.join(r['file'] for r in found)}: the seeds were evaluated on different "
                                     f"objects of {split}; evaluate them again")  # fmt: skip
                cells = []
                for key in ("sustained", "success", "held"):
                    per_seed = [r[key] for r in found]
                    per_object = np.mean([[row[name][key] for name in rows[0]] for row in rows], axis=0)
                    low, high = confidence_interval(per_object)
                    spread = f"{100 * min(per_seed):.1f}-{100 * max(per_seed):.1f}"
                    cells.append(f"{100 * np.mean(per_seed):.1f} ({spread}); CI {100 * low:.1f}-{100 * high:.1f}")
                lines.append(f"| {label} | {split} | {len(found)} | " + " | ".join(cells) + " |")
        return lines if len(lines) > 5 else []

    def _plot_curves(self) -> list[Path]:
        """The headline (periodic sustained success on train) and the rollouts' success, against env steps and
        wall time, for every run that logged them."""
        from resdex_sb3.curves import plot_runs

        runs = {p.name: p for p in sorted(self.out.iterdir()) if (p / "tb").is_dir() and ".stale-" not in p.name}
        plots = []
        for tag, name in (("eval/sustained_train", "curves"), ("charts/success_rate", "curves_rollout")):
            for x, suffix in (("steps", ""), ("wall", "_wall")):
                plot = plot_runs(runs, tag, self.out / f"{name}{suffix}.png", x) if runs else None
                if plot:
                    plots.append(plot)
        return plots


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--preset", choices=("smoke", "cpu", "paper"), default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/pipeline-<preset>)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--until", default=None, metavar="STAGE",
                        help="stop once this stage (e.g. base-3, hyper, vision-camera) is complete")  # fmt: skip
    parser.add_argument("--report-only", action="store_true",
                        help="write results.md from the evaluations finished so far, and train nothing")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                        help="run independent stages at once on a Ray cluster: local (one started for this run), auto "
                             "(the one `ray start --head` runs here; the default of a bare --ray) or HOST:PORT; "
                             "--out and the object data must be on a filesystem every node shares")  # fmt: skip
    parser.add_argument("--ray-cpus-per-job", type=float, default=2, metavar="N",
                        help="CPUs each training job asks of the Ray cluster (default 2)")
    parser.add_argument("--ray-gpus-per-job", type=float, default=None, metavar="N",
                        help="GPUs each training job asks for; a fraction shares one (default: 1 where the cluster "
                             "has GPUs, else 0)")  # fmt: skip
    args = parser.parse_args(argv)
    pipeline = Pipeline(args.preset, args.out or Path(f"runs/pipeline-{args.preset}"), args.data_dir, args.seed,
                        until=args.until)  # fmt: skip
    if args.report_only:
        if not pipeline.status_path.exists():
            print(f"error: {pipeline.status_path} does not exist: nothing has run in {pipeline.out}", file=sys.stderr)
            return 2
        print(f"[pipeline] results so far: {pipeline.report_so_far()}")
        return 0
    if args.ray is not None:  # Ray is imported only here
        from resdex_sb3.ray_pipeline import run_pipeline

        return run_pipeline(pipeline, args.ray, args.ray_cpus_per_job, args.ray_gpus_per_job)
    try:
        pipeline.run()
    except StopAfterStage as stop:
        print(f"[pipeline] stopped after {stop} (--until)")
    except subprocess.CalledProcessError as err:  # the stage's own output above says why; pipeline.json has it too
        print(f"[pipeline] error: a stage's command failed (exit {err.returncode}): {' '.join(err.cmd)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
