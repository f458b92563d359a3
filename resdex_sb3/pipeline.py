"""``python -m resdex_sb3.pipeline --preset smoke|cpu|paper [--out DIR]``: the whole method, resumable.

Stages: objects -> shape codes and k clusters -> one geometry-unaware base policy per cluster representative
-> hyper-policy stage 1 (grasp-proposal reward) -> stage 2 (loosened reward, initialised from stage 1)
-> the from-scratch multi-task PPO baseline (same two stages and budget, no base policies) -> the vision students
of the final hyper-policy (DAgger, ``gt_pose`` and ``camera`` clouds; ``zoo_configs/distill.yml``) -> evaluation of
the method, the baseline and both students on the three splits -> ``results.md`` with learning curves.

Every training stage is its own ``resdex_sb3.train`` process writing atomic checkpoints; a stage whose final
model exists is skipped, and one with only a checkpoint continues from it. ``pipeline.json`` records each
stage's status and wall time. Budgets are in ``zoo_configs/pipeline.yml``; PPO settings in ``ppo.yml``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from envs.objects.store import atomic_write_bytes, atomic_write_json
from envs.vision import CLOUD_MODES as VISION_MODES
from resdex_sb3.distill import finished_rounds, load_distill_preset

CONFIG = Path(__file__).resolve().parents[1] / "zoo_configs" / "pipeline.yml"
SPLITS = ("train", "unseen_obj", "unseen_cat")
PIPELINE_KEYS = {"object_set", "k", "base_timesteps", "stage1_timesteps", "stage2_timesteps", "baseline",
                 "eval_trials", "encoder_epochs", "distill_rounds", "base_attempts", "base_success_threshold",
                 "base_eval_trials"}  # fmt: skip


def load_preset(preset: str, path: Path = CONFIG) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    if preset not in data:
        raise ValueError(f"{path}: no preset {preset!r}; presets: {sorted(data)}")
    unknown = sorted(set(data[preset]) - PIPELINE_KEYS)
    if unknown:
        raise ValueError(f"{path}: preset {preset!r} has unknown key(s) {unknown}; allowed: {sorted(PIPELINE_KEYS)}")
    return data[preset]


class StopAfterStage(Exception):
    """Raised once the stage named by ``--until`` is complete."""


class Pipeline:
    """Runs and records the stages of one preset in one output folder.

    :param preset: ``smoke``, ``cpu`` or ``paper``.
    :param out: output folder (every run, the results and ``pipeline.json``).
    :param data_dir: object data directory (default: ``$RESDEX_DATA`` or ``data/``).
    :param seed: seed of every stage.
    :param config: the pipeline YAML (``zoo_configs/pipeline.yml``).
    :param until: stop once the stage of this name (``base-3``, ``hyper``, ...) is complete; ``None`` runs all.
    """

    def __init__(self, preset: str, out: Path, data_dir: str | None = None, seed: int = 0,
                 config: Path = CONFIG, until: str | None = None) -> None:  # fmt: skip
        self.preset, self.out, self.data_dir, self.seed, self.until = preset, out, data_dir, seed, until
        self.cfg = load_preset(preset, config)
        self.status_path = out / "pipeline.json"
        self.status: dict[str, Any] = json.loads(self.status_path.read_text()) if self.status_path.exists() else {}

    # ------------------------------------------------------------------ bookkeeping
    def _record(self, stage: str, **info: Any) -> None:
        self.status.setdefault(stage, {}).update(info)
        atomic_write_json(self.status_path, self.status)

    def _timed(self, stage: str, fn, *args: Any) -> Any:
        """Run a stage unless it finished with the same inputs (a grown budget, say, reruns and continues it)."""
        key = json.dumps([self.cfg, [str(a) for a in args]], sort_keys=True, default=str)
        previous = dict(self.status.get(stage, {}))  # a copy: the record below updates the stored one
        if previous.get("status") == "done" and previous.get("inputs") == key:
            print(f"[pipeline] {stage}: done, skipped")
            self._stop_if_until(stage)
            return previous.get("result")
        print(f"[pipeline] {stage}: running")
        began = time.perf_counter()
        # Wall time adds up over attempts of one stage that ended in an error or Ctrl-C; a stage that finished
        # before (with other inputs) starts its count again, unless it finds its output complete and reuses it
        # (a budget of another stage changed, say): then its time stays what producing that output took.
        spent_before = 0.0 if previous.get("status") == "done" else previous.get("seconds", 0.0)
        self._record(stage, status="running", seconds=spent_before)
        try:
            result = fn(*args)
        except BaseException as err:  # Ctrl-C too: its time counts toward the next attempt
            elapsed = spent_before + time.perf_counter() - began
            self._record(stage, status="failed", error=repr(err), seconds=round(elapsed, 1))
            raise
        seconds = spent_before + time.perf_counter() - began
        if isinstance(result, dict) and result.get("reused") and previous.get("status") == "done":
            seconds = previous.get("seconds", seconds)
        self._record(stage, status="done", seconds=round(seconds, 1), result=result, inputs=key)
        self._stop_if_until(stage)
        return result

    def _stop_if_until(self, stage: str) -> None:
        if stage == self.until:
            raise StopAfterStage(stage)

    # ------------------------------------------------------------------ stages
    def run(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        set_name = self.cfg["object_set"]
        self._timed("objects", self._objects, set_name)
        clusters = self._timed("shape", self._shape, set_name)
        bases = []
        for i, members in enumerate(clusters["candidates"]):
            chosen = self._timed(f"base-{i}", self._train_base, i, set_name, members)
            bases.append(f"../{chosen['run']}")
        codes = "../shape/codes.json"  # relative to each run folder, so the output folder can move
        hyper_kwargs = {"object_set": set_name, "split": "train", "shape_codes": codes}
        runs = {"method": ("hyper-stage1", "hyper", bases)}
        if self.cfg["baseline"]:
            runs["baseline"] = ("baseline-stage1", "baseline", None)
        for label, (stage1, stage2, base_models) in runs.items():
            kwargs = {**hyper_kwargs, **({"base_models": base_models} if base_models else {})}
            preset = self.preset if base_models else f"baseline-{self.preset}"  # ppo.yml's multi-task baseline
            self._timed(stage1, self._train, "ResDexHyper", self.out / stage1, self.cfg["stage1_timesteps"],
                        {**kwargs, "reward_mode": "stage1"}, None, preset)  # fmt: skip
            init = self.out / stage1 / "ResDexHyper-v0.zip"  # stage 2 starts from stage 1 (the reference forgot to)
            self._timed(stage2, self._train, "ResDexHyper", self.out / stage2, self.cfg["stage2_timesteps"],
                        {**kwargs, "reward_mode": "stage2"}, init, preset)  # fmt: skip
        students = []
        for mode in VISION_MODES:  # DAgger of the method's final hyper-policy into a point-cloud student
            students.append(f"vision-{mode}")
            budget = {**load_distill_preset(self.preset), "rounds": self.cfg["distill_rounds"]}
            self._timed(students[-1], self._distill, mode, budget)
        results = {}
        for label, (_, final, _) in runs.items():
            for split in SPLITS:
                results[f"{label}/{split}"] = self._timed(f"eval-{label}-{split}", self._evaluate, final, split)
        for student in students:
            for split in SPLITS:
                stage = f"eval-{student}-{split}"
                results[f"{student}/{split}"] = self._timed(stage, self._evaluate, student, split)
        self._timed("report", self._report, results)
        print(f"[pipeline] results: {self.out / 'results.md'}")

    def _objects(self, set_name: str) -> dict[str, Any]:
        from envs.objects.catalog import load_object_set

        objset = load_object_set(set_name, self.data_dir)
        return {"objects": len(objset.objects), "proposal_share": objset.report.get("proposal_share")}

    def _shape(self, set_name: str) -> dict[str, Any]:
        from resdex_sb3.cluster import run_clustering
        from resdex_sb3.shape import EncoderTrainConfig

        config = EncoderTrainConfig(epochs=self.cfg["encoder_epochs"])
        result, _ = run_clustering(self.cfg["k"], set_name, self.data_dir, self.out / "shape", self.seed, config)
        attempts = self.cfg["base_attempts"]
        return {"candidates": [[m["name"] for m in c["members"][:attempts]] for c in result["clusters"]]}

    def _train_base(self, index: int, set_name: str, members: list[str]) -> dict[str, Any]:
        """The reference's rule: a base on the member nearest the centre; while its success stays under the
        threshold, another base on the next-nearest member. Returns the best attempt."""
        from resdex_sb3.evaluate import evaluate_run

        tried, reused = [], True
        for attempt, name in enumerate(members):
            run_name = f"base-{index}" if attempt == 0 else f"base-{index}-try{attempt}"
            trained = self._train("ResDexBase", self.out / run_name, self.cfg["base_timesteps"],
                                  {"object_set": set_name, "objects": [name]}, None)  # fmt: skip
            reused = reused and trained.get("reused", False)
            result = evaluate_run(self.out / run_name, "train", self.cfg["base_eval_trials"], self.data_dir,
                                  only=[name])  # fmt: skip
            tried.append({"run": run_name, "object": name, "success": result.mean_success})
            print(f"[pipeline] base-{index}: {name} reaches {100 * result.mean_success:.0f} % on itself")
            if result.mean_success >= self.cfg["base_success_threshold"]:
                break
        best = max(tried, key=lambda t: t["success"])
        return {**best, "attempts": tried, "reused": reused}

    def _train(self, env: str, run: Path, timesteps: int, env_kwargs: dict[str, Any], init: Path | None,
               preset: str | None = None) -> dict:  # fmt: skip
        final = run / f"{env}-v0.zip"
        checkpoint = run / "checkpoint.json"
        done = json.loads(checkpoint.read_text())["num_timesteps"] if checkpoint.exists() else 0
        target = timesteps + (self._init_steps(init) if init is not None else 0)
        if final.exists() and not self._same_setup(run, env_kwargs):
            stale = run.with_name(f"{run.name}.stale-{int(time.time())}")
            print(f"[pipeline] {run} was trained with other inputs (bases, objects or reward): moved to {stale}")
            run.rename(stale)
            done = 0
        if final.exists() and done >= target:
            return {"run": str(run), "timesteps": done, "reused": True}
        if self.data_dir:
            env_kwargs = {**env_kwargs, "data_dir": self.data_dir}
        command = [sys.executable, "-m", "resdex_sb3.train", "--algo", "ppo", "--env", env,
                   "--preset", preset or self.preset, "--run-dir", str(run), "--seed", str(self.seed),
                   "-tb", str(run / "tb"), "--env-kwargs", *[f"{k}:{v!r}" for k, v in env_kwargs.items()]]  # fmt: skip
        if done:  # shipped runs keep only the final model (checkpoint.zip is not committed): continue from it
            latest = run / "checkpoint.zip" if (run / "checkpoint.zip").exists() else final
            command += ["-i", str(latest)]
            remaining = target - done
        elif init is not None:
            command += ["-i", str(init)]
            remaining = timesteps
        else:
            remaining = timesteps
        command += ["-n", str(max(remaining, 1))]
        print("[pipeline] " + " ".join(command))
        subprocess.run(command, check=True)
        return {"run": str(run), "timesteps": json.loads(checkpoint.read_text())["num_timesteps"]}

    def _distill(self, mode: str, budget: dict[str, Any]) -> dict:
        """The ``mode`` vision student of ``hyper`` (``resdex_sb3.distill``; it resumes from its own checkpoint)."""
        run = self.out / f"vision-{mode}"
        command = [sys.executable, "-m", "resdex_sb3.distill", "--expert", str(self.out / "hyper"), "--mode", mode,
                   "--preset", self.preset, "--out", str(run), "--seed", str(self.seed),
                   "--rounds", str(budget["rounds"])]  # fmt: skip
        if self.data_dir:
            command += ["--data-dir", self.data_dir]
        if finished_rounds(run) >= budget["rounds"]:
            return {"run": str(run), "reused": True}
        print("[pipeline] " + " ".join(command))
        subprocess.run(command, check=True)
        return {"run": str(run)}

    @staticmethod
    def _same_setup(run: Path, env_kwargs: dict[str, Any]) -> bool:
        """Whether a finished run used the inputs that decide what it learned."""
        from resdex_sb3.run_folder import load_run

        saved = load_run(run).env_kwargs
        return all(saved.get(k) == env_kwargs.get(k) for k in ("objects", "base_models", "reward_mode", "object_set"))

    @staticmethod
    def _init_steps(init: Path) -> int:
        info = init.parent / "checkpoint.json"
        return json.loads(info.read_text())["num_timesteps"] if info.exists() else 0

    def _evaluate(self, run_name: str, split: str) -> dict[str, Any]:
        from resdex_sb3.evaluate import evaluate_run, result_json

        run = self.out / run_name
        result = evaluate_run(run, split, self.cfg["eval_trials"], self.data_dir)
        summary = result_json(result, split, str(run))
        atomic_write_json(self.out / "eval" / f"{run_name}-{split}.json", summary)
        return {k: summary[k] for k in ("success", "ci95", "held", "held_ci95", "num_objects")}

    def _report(self, results: dict[str, Any]) -> dict[str, Any]:
        lines = [f"# ResDex pipeline, preset `{self.preset}`", "",
                 f"Object set `{self.cfg['object_set']}`, {self.cfg['eval_trials']} trials per object, "
                 "success = any time within 5 cm of the goal; held = at the goal on the last step; "
                 "mean over objects with a 95 % t-interval over objects.", "",
                 "| policy | split | objects | success % (95 % CI) | held % (95 % CI) |", "|---|---|---|---|---|"]  # fmt: skip
        for key, r in results.items():
            label, split = key.split("/")
            lines.append(f"| {label} | {split} | {r['num_objects']} | {100 * r['success']:.1f} "
                         f"({100 * r['ci95'][0]:.1f}-{100 * r['ci95'][1]:.1f}) | {100 * r['held']:.1f} "
                         f"({100 * r['held_ci95'][0]:.1f}-{100 * r['held_ci95'][1]:.1f}) |")  # fmt: skip
        stage_times = {k: v.get("seconds") for k, v in self.status.items() if "seconds" in v}
        lines += ["", "| stage | wall time (s) |", "|---|---|"] + [f"| {k} | {v} |" for k, v in stage_times.items()]
        plot = self._plot_curves()
        if plot:
            lines += ["", f"![learning curves]({plot.name})"]
        atomic_write_bytes(self.out / "results.md", ("\n".join(lines) + "\n").encode())
        return {"table": str(self.out / "results.md")}

    def _plot_curves(self) -> Path | None:
        from resdex_sb3.curves import plot_runs

        runs = {p.name: p for p in sorted(self.out.iterdir()) if (p / "tb").is_dir()}
        return plot_runs(runs, "charts/success_rate", self.out / "curves.png") if runs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--preset", choices=("smoke", "cpu", "paper"), default="cpu")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/pipeline-<preset>)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--until", default=None, metavar="STAGE",
                        help="stop once this stage (e.g. base-3, hyper, vision-camera) is complete")  # fmt: skip
    args = parser.parse_args(argv)
    pipeline = Pipeline(args.preset, args.out or Path(f"runs/pipeline-{args.preset}"), args.data_dir, args.seed,
                        until=args.until)  # fmt: skip
    try:
        pipeline.run()
    except StopAfterStage as stop:
        print(f"[pipeline] stopped after {stop} (--until)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
