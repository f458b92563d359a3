"""``python -m resdex_sb3.ablations --preset smoke|cpu --out DIR``: the paper's ablation grid, resumable.

The grid (``zoo_configs/ablations.yml``) lives in a pipeline's output folder and reuses what that pipeline made:
its object set, shape codes and bases, its stage budgets and evaluation trials, and its own runs of the variants
it trains itself (the method, the baseline). Each variant trains the hyper-policy's two stages for every seed
(stage 2 from stage 1's best checkpoint, as the pipeline does) and evaluates both stages on the three splits:

- k bases (the first k the pipeline kept; a k above the pipeline's clusters again and trains k bases of its own);
- MoE without a residual (weights only), residual on a single base (k = 1), stage 1 only against stage 1 + 2 (every
  variant's two stages), without the proposal reward, the from-scratch baseline, the hyper-policy trained with
  sb3-contrib's TRPO.

First the bases the grid needs are made (the pipeline's stages up to its last base, recorded in its
``pipeline.json``; own-clustering variants likewise in ``<out>/ablations/<variant>/``), then the grid's stages,
recorded in ``<out>/ablations/ablations.json``. A stage done with the same inputs is skipped, a killed training
continues from its checkpoint, so the same command resumes the grid. ``<out>/ablations/grid.json`` lists every
planned run and evaluation JSON, done or not: ``python -m resdex_sb3.report`` reads it.
``--ray [auto|local|ADDRESS]`` runs independent stages at once on a Ray cluster, as the pipeline does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from envs.files import atomic_write_json
from envs.objects.spec import SPLITS
from resdex_sb3.errors import UserError, cli_main
from resdex_sb3.pipeline import Pipeline
from resdex_sb3.presets import ABLATIONS_CONFIG, load_ablation_preset
from resdex_sb3.stage import StageCall
from resdex_sb3.stage_graph import StageGraph

#: the grid's folder inside the pipeline's output folder
GRID_DIR = "ablations"
#: the grid's plan: every variant, seed, stage, run folder and evaluation JSON (paths relative to the output folder)
PLAN_FILE = "grid.json"
STAGES = ("stage1", "stage2")


class AblationGrid(Pipeline):
    """The ablation grid of one preset in a pipeline's output folder: a pipeline whose stage graph is the grid.

    :param preset: the pipeline preset (``zoo_configs/pipeline.yml``) and the grid preset (``ablations.yml``).
    :param out: the pipeline's output folder.
    :param data_dir: object data directory (default: ``$RESDEX_DATA`` or ``data/``).
    :param variants: run only these variants (default all of the preset's).
    :param seeds: run only these seeds (default the preset's).
    :param config: the grid YAML.
    """

    STATUS_FILE = f"{GRID_DIR}/ablations.json"

    def __init__(self, preset: str, out: Path, data_dir: str | None = None, variants: list[str] | None = None,
                 seeds: list[int] | None = None, config: Path = ABLATIONS_CONFIG) -> None:  # fmt: skip
        super().__init__(preset, out, data_dir)
        self.grid = load_ablation_preset(preset, config)
        known = self.grid["variants"]
        unknown = sorted(set(variants or []) - set(known))
        if unknown:
            raise ValueError(f"{config}: preset {preset!r} has no variant(s) {unknown}; known: {sorted(known)}")
        #: the variants and seeds this command runs; the plan lists the preset's all, so the rest show as missing
        self.variants = {name: known[name] for name in (variants or known)}
        self.seeds = list(seeds) if seeds is not None else list(self.grid["seeds"])
        self.planned_seeds = sorted(set(self.grid["seeds"]) | set(self.seeds))

    # ------------------------------------------------------------------ layout
    def run_names(self, variant: str, seed: int) -> dict[str, str]:
        """Stage -> run folder (relative to ``out``) of one variant and seed."""
        spec = self.grid["variants"][variant]
        reuse = spec.get("reuse")
        if reuse and seed in self.cfg["seeds"]:  # the pipeline's own run of this seed
            suffix = "" if seed == self.cfg["seeds"][0] else f"-seed{seed}"
            return {"stage1": f"{reuse}-stage1{suffix}", "stage2": f"{reuse}{suffix}"}
        return {stage: f"{GRID_DIR}/{variant}/{stage}-seed{seed}" for stage in STAGES}

    def eval_path(self, variant: str, seed: int, stage: str, split: str) -> str:
        """Where the evaluation JSON of one run on one split goes (relative to ``out``)."""
        return f"{GRID_DIR}/eval/{variant}-{stage}-seed{seed}-{split}.json"

    def plan(self) -> dict[str, Any]:
        """The grid's plan (``grid.json``): settings, and per variant and seed the run folders and evaluations."""
        variants = {}
        for name, spec in self.grid["variants"].items():
            runs = {}
            for seed in self.planned_seeds:
                names = self.run_names(name, seed)
                runs[str(seed)] = {stage: {"run": names[stage],
                                           "eval": {split: self.eval_path(name, seed, stage, split) for split in SPLITS}}
                                   for stage in STAGES}  # fmt: skip
            variants[name] = {"label": spec.get("label", name), "settings": spec, "num_bases": self._num_bases(spec),
                              "runs": runs}  # fmt: skip
        prepared = getattr(self, "prepared", None)
        bases = (prepared[None].passed_bases() if prepared else None) or []
        return {"preset": self.preset, "object_set": self.cfg["object_set"], "eval_trials": self.cfg["eval_trials"],
                "bases": bases,
                "stage1_timesteps": self.cfg["stage1_timesteps"], "stage2_timesteps": self.cfg["stage2_timesteps"],
                "pipeline_k": self.cfg["k"], "seeds": self.planned_seeds, "splits": list(SPLITS), "variants": variants}  # fmt: skip

    def _num_bases(self, spec: dict[str, Any]) -> int:
        return int(spec["k"]) if "k" in spec else int(spec.get("bases", self.cfg["k"]))

    # ------------------------------------------------------------------ running
    def prerequisites(self) -> dict[str | None, Pipeline]:
        """The pipelines whose bases the grid needs: the output folder's own (key None), and one per
        own-clustering variant (key: the variant), in ``<out>/ablations/<variant>/`` with that variant's ``k``."""
        pipelines: dict[str | None, Pipeline] = {None: Pipeline(self.preset, self.out, self.data_dir)}
        for name, spec in self.variants.items():
            if "k" in spec:
                pipelines[name] = Pipeline(self.preset, self.out / GRID_DIR / name, self.data_dir,
                                           overrides={"k": int(spec["k"])})  # fmt: skip
        return pipelines

    def run(self, executor: Any = None) -> None:
        """Make the bases (each pipeline's stages up to its last base), write the plan, run the grid's stages."""
        self.prepared = self.prerequisites()
        for name, pipeline in self.prepared.items():
            print(f"[ablations] bases of {'the pipeline' if name is None else name}: {pipeline.out}")
            pipeline.run_graph(pipeline.bases_graph(), executor)
        atomic_write_json(self.out / GRID_DIR / PLAN_FILE, self.plan())
        self.run_graph(self.stage_graph(), executor)
        print(f"[ablations] plan: {self.out / GRID_DIR / PLAN_FILE}; "
              f"report: python -m resdex_sb3.report --runs {self.out}")  # fmt: skip

    def _bases_of(self, variant: str) -> list[str]:
        """Run folders (relative to ``out``) of the bases a variant mixes."""
        spec = self.variants[variant]
        pipeline = self.prepared[variant if "k" in spec else None]
        passed = pipeline.passed_bases()
        if passed is None:
            raise RuntimeError(f"the bases of {pipeline.out} are not all done (see {pipeline.status_path})")
        prefix = "" if pipeline.out == self.out else f"{pipeline.out.relative_to(self.out)}/"
        wanted = self._num_bases(spec)
        if wanted and not passed:  # it would train from scratch under a mixture's name
            raise UserError(f"{variant}: no base of {pipeline.out} passed its gate (see {pipeline.status_path})")
        if len(passed) < wanted:
            print(f"[ablations] {variant}: only {len(passed)} of {wanted} bases passed their gate; it mixes those")
        return [prefix + run for run in passed[:wanted]]

    def stage_graph(self) -> StageGraph:
        """Per variant and seed: stage 1 -> its evaluations, stage 2 (from stage 1's best) -> its evaluations."""
        graph = StageGraph()
        for variant, spec in self.variants.items():
            algo = spec.get("algo", "ppo")
            zoo_preset = spec.get("zoo_preset", "{preset}").format(preset=self.preset)
            rewards = {"stage1": spec.get("stage1_reward", "stage1"),
                       "stage2": spec.get("stage2_reward", self.cfg["stage2_reward"])}  # fmt: skip
            for seed in self.seeds:
                names = self.run_names(variant, seed)
                for stage in STAGES:
                    node = f"{variant}-{stage}-seed{seed}"

                    def train(r: dict[str, Any], node: str = node, variant: str = variant, stage: str = stage,
                              seed: int = seed, names: dict[str, str] = names, algo: str = algo,
                              zoo_preset: str = zoo_preset, rewards: dict[str, str] = rewards) -> StageCall:  # fmt: skip
                        run = self.out / names[stage]
                        # paths relative to the run folder, in the form the pipeline gives its own runs (a reused
                        # run must see the very env_kwargs it was trained with, or the pipeline would retrain it)
                        kwargs: dict[str, Any] = {"object_set": self.cfg["object_set"], "split": "train",
                                                  "shape_codes": os.path.relpath(self.out / "shape" / "codes.json", run),
                                                  "reward_mode": rewards[stage]}  # fmt: skip
                        bases = self._bases_of(variant)
                        if bases:
                            kwargs["base_models"] = [os.path.relpath(self.out / base, run) for base in bases]
                        init = self._stage2_init(names["stage1"]) if stage == "stage2" else None
                        budget = self.cfg[f"{stage}_timesteps"]
                        return StageCall(self._train, ("ResDexHyper", run, budget, kwargs, init, zoo_preset, seed, algo),
                                         node, "train", run)  # fmt: skip

                    graph.add(node, [f"{variant}-stage1-seed{seed}"] if stage == "stage2" else [], train)
                    for split in SPLITS:
                        graph.add(f"eval-{node}-{split}", [node], lambda r, v=variant, s=seed, st=stage, sp=split:
                                  StageCall(self._evaluate_grid, (self.run_names(v, s)[st], sp,
                                                                  self.eval_path(v, s, st, sp)),
                                            f"eval-{v}-{st}-seed{s}-{sp}", label=f"{v}/{st}/seed{s}/{sp}"))  # fmt: skip
        return graph

    def _evaluate_grid(self, run_name: str, split: str, json_path: str) -> dict[str, Any]:
        """Evaluate ``out/run_name`` on ``split`` into ``out/json_path`` (with GIFs of a success and a failure for
        the first seed's stage 2 of every variant)."""
        from resdex_sb3.run_evaluation import evaluate_run, result_json

        run = self.out / run_name
        gifs = None
        if json_path.endswith(f"stage2-seed{self.planned_seeds[0]}-{split}.json"):
            gifs = self.out / GRID_DIR / "gifs" / Path(json_path).stem
        result = evaluate_run(run, split, self.cfg["eval_trials"], self.data_dir, gifs=gifs)
        summary = result_json(result, split, run_name)
        atomic_write_json(self.out / json_path, summary)
        return {"file": json_path, "sustained": summary["sustained"], "success": summary["success"],
                "held": summary["held"]}  # fmt: skip


def _csv(kind: type) -> Any:
    def parse(text: str) -> list[Any]:
        try:
            return [kind(part) for part in text.split(",") if part]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {kind.__name__}, got {text!r}")
    return parse


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.ablations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--preset", default="cpu", help="a preset of zoo_configs/ablations.yml and pipeline.yml")
    parser.add_argument("--out", type=Path, required=True, help="the pipeline's output folder")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--variants", type=_csv(str), default=None, help="only these variants (comma-separated)")
    parser.add_argument("--seeds", type=_csv(int), default=None, help="only these seeds (comma-separated)")
    parser.add_argument("--ray", nargs="?", const="auto", default=None, metavar="auto|local|ADDRESS",
                        help="run independent stages at once on a Ray cluster (as the pipeline's --ray)")
    parser.add_argument("--ray-cpus-per-job", type=float, default=2, metavar="N")
    parser.add_argument("--ray-gpus-per-job", type=float, default=None, metavar="N")
    args = parser.parse_args(argv)
    grid = AblationGrid(args.preset, args.out, args.data_dir, args.variants, args.seeds)
    if args.ray is not None:
        from resdex_sb3.ray_pipeline import run_pipeline

        return run_pipeline(grid, args.ray, args.ray_cpus_per_job, args.ray_gpus_per_job)
    try:
        grid.run()
    except subprocess.CalledProcessError as err:
        print(f"[ablations] error: a stage's command failed (exit {err.returncode}): {' '.join(err.cmd)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
