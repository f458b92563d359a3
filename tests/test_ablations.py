"""The ablation grid (``resdex_sb3.ablations``) and the report built from its files (``resdex_sb3.report``)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from subprocess_cli import REPO, copy_pipeline, run_module

from resdex_sb3.ablations import AblationGrid
from resdex_sb3.presets import ABLATIONS_CONFIG, load_ablation_preset
from resdex_sb3.report import MISSING, Report, RunsFolder

SPLITS = ("train", "unseen_obj", "unseen_cat")


@pytest.fixture(scope="module")
def smoke_grid(tmp_path_factory, small_data, smoke_pipeline):
    """The smoke grid in a copy of the session's smoke pipeline (its bases, and its method as k2's seed 0), run in
    two commands (k1 over seeds 0 and 1; then k2 on seed 0 of its two: reused, evaluated only), with the rest of the
    preset's variants never run, and its report."""
    out = copy_pipeline(smoke_pipeline, tmp_path_factory.mktemp("grid") / "pipe")
    first = run_module("resdex_sb3.ablations", "--preset", "smoke", "--out", str(out), "--variants", "k1",
                       "--seeds", "0,1", data=small_data)  # fmt: skip
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    second = run_module("resdex_sb3.ablations", "--preset", "smoke", "--out", str(out), "--variants", "k2",
                        "--seeds", "0", data=small_data)  # fmt: skip
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    report = run_module("resdex_sb3.report", "--runs", str(out), data=small_data)
    assert report.returncode == 0, report.stderr[-3000:]
    return out


def test_grid_preset_errors_name_the_file_and_the_key(tmp_path):
    grid = load_ablation_preset("cpu")
    assert {"k1", "k2", "k4", "k8", "moe_only", "no_proposal", "trpo", "baseline"} <= set(grid["variants"])
    data = yaml.safe_load(ABLATIONS_CONFIG.read_text())
    for change, message in ((("kk", 3), r"unknown key\(s\) \['kk'\]"), (("k", 3), "bases .* or k .*not both"),
                            (("algo", "sac"), "algo must be ppo or trpo")):  # fmt: skip
        bad = json.loads(json.dumps(data))
        bad["smoke"]["variants"]["k1"][change[0]] = change[1]
        path = tmp_path / "ablations.yml"
        path.write_text(yaml.safe_dump(bad))
        with pytest.raises(ValueError, match=f"{re.escape(str(path))}: smoke/variants/k1.*{message}"):
            load_ablation_preset("smoke", path)


def test_plan_reuses_the_pipelines_own_runs_for_its_seeds(tmp_path):
    grid = AblationGrid("cpu", tmp_path, variants=["k1"])
    plan = grid.plan()
    assert set(plan["variants"]) == set(load_ablation_preset("cpu")["variants"])  # planned, whether run or not
    assert plan["seeds"] == [0, 1, 2]
    k4 = plan["variants"]["k4"]["runs"]
    assert [k4[s]["stage2"]["run"] for s in ("0", "1", "2")] == ["hyper", "hyper-seed1", "hyper-seed2"]
    assert k4["1"]["stage1"]["run"] == "hyper-stage1-seed1"
    assert plan["variants"]["k1"]["runs"]["0"]["stage1"]["run"] == "ablations/k1/stage1-seed0"
    assert plan["variants"]["k8"]["num_bases"] == 8 and plan["variants"]["baseline"]["num_bases"] == 0
    assert [n for n in grid.stage_graph().names if not n.startswith("eval-")] == [
        f"k1-{stage}-seed{seed}" for seed in (0, 1, 2) for stage in ("stage1", "stage2")]


def test_report_without_a_grid_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "resdex_sb3.report", "--runs", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "resdex_sb3.ablations" in done.stderr


def _table(text: str, heading: str) -> list[list[str]]:
    """Rows (cells) of the markdown table under ``heading``."""
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("|---")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def _seed_mean(out: Path, variant: str, stage: str, split: str, key: str, seeds: list[int]) -> float:
    values = [json.loads((out / "ablations" / "eval" / f"{variant}-{stage}-seed{s}-{split}.json").read_text())[key]
              for s in seeds]  # fmt: skip
    return float(np.mean(values))


def test_the_report_holds_every_table_and_figure(smoke_grid):
    text = (smoke_grid / "report" / "report.md").read_text()
    for heading in ("## ResDex's claims", "## Table 1", "## Table 2", "## Table 3", "## Table 4", "## Table 5",
                    "## Every variant", "## Figures"):  # fmt: skip
        assert heading in text, heading
    for figure in ("curves_steps.png", "curves_wall.png", "success_by_category.png", "weights_by_category.png",
                   "distance_by_k.png"):  # fmt: skip
        assert (smoke_grid / "report" / figure).stat().st_size > 1000, figure
        assert f"({figure})" in text
    assert "*paper:* ResDex k=4" in text


def test_every_table_number_equals_the_evaluation_json_it_came_from(smoke_grid):
    text = (smoke_grid / "report" / "report.md").read_text()
    rows = {row[0]: row for row in _table(text, "## Table 2")}
    for label, variant, seeds in (("ResDex k=1", "k1", [0, 1]), ("ResDex k=2", "k2", [0])):
        row = rows[label]
        assert row[1] == f"{len(seeds)}/2"
        for i, (split, key) in enumerate((s, m) for s in SPLITS for m in ("sustained", "success", "held")):
            expected = 100 * _seed_mean(smoke_grid, variant, "stage2", split, key, seeds)
            assert float(row[2 + i].split(" ± ")[0]) == pytest.approx(expected, abs=0.051), (label, split, key)
    numbers = json.loads((smoke_grid / "report" / "report.json").read_text())["numbers"]
    held = numbers["table1"]["ResDex k=1"]["unseen_cat"]["held"]
    assert held["mean"] == pytest.approx(_seed_mean(smoke_grid, "k1", "stage1", "unseen_cat", "held", [0, 1]))
    assert held["seeds"] == 2 and len(held["files"]) == 2


def _per_object(out: Path, variant: str, stage: str, split: str, seeds: list[int]) -> dict[str, float]:
    files = [out / "ablations" / "eval" / f"{variant}-{stage}-seed{s}-{split}.json" for s in seeds]
    tables = [{row["object"]: row["sustained"] for row in json.loads(f.read_text())["objects"]} for f in files]
    return {o: float(np.mean([t[o] for t in tables])) for o in set.intersection(*(set(t) for t in tables))}


def test_each_step_in_k_is_the_paired_difference_of_its_evaluations(smoke_grid):
    text = (smoke_grid / "report" / "report.md").read_text()
    rows = {(row[0], row[1]): row for row in _table(text, "## Each step in k")}
    assert set(rows) == {(step, stage) for step in ("k=2 - k=1", "k=3 - k=2") for stage in ("1", "2")}
    large, small = (_per_object(smoke_grid, "k2", "stage2", "train", [0]),
                    _per_object(smoke_grid, "k1", "stage2", "train", [0, 1]))  # fmt: skip
    expected = 100 * np.mean([large[o] - small[o] for o in large.keys() & small.keys()])
    assert float(rows[("k=2 - k=1", "2")][2].split(" ")[0]) == pytest.approx(expected, abs=0.051)
    assert rows[("k=2 - k=1", "1")][5] == "-0.4"  # the paper's 82.8 - 83.2
    assert rows[("k=3 - k=2", "2")][2:5] == [MISSING] * 3  # k = 3 never ran: missing, not a zero
    numbers = json.loads((smoke_grid / "report" / "report.json").read_text())["numbers"]["k_steps"]
    assert numbers["k=3 - k=2 stage2"]["train"] is None
    assert 100 * numbers["k=2 - k=1 stage2"]["train"]["mean"] == pytest.approx(expected)


def test_a_missing_run_is_shown_as_missing_never_as_zero(smoke_grid):
    text = (smoke_grid / "report" / "report.md").read_text()
    variants = {row[0]: row for row in _table(text, "## Every variant")}
    never_run = [label for label in variants if label.startswith(("ResDex k=3", "from-scratch", "ResDex k=2 without",
                                                                   "ResDex k=2 trained with TRPO", "MoE"))]  # fmt: skip
    assert len(never_run) == 10  # five variants never run, two stages each
    for label in never_run:
        assert variants[label][1] == "0/2" and set(variants[label][2:]) == {MISSING}
    method = variants["ResDex k=2 (the pipeline's method), stage2"]
    assert method[1] == "1/2" and MISSING not in method[2:]  # one of two planned seeds ran: its numbers, not a zero
    numbers = json.loads((smoke_grid / "report" / "report.json").read_text())["numbers"]
    assert numbers["variants"]["ResDex k=3 (own clustering), stage1"]["train"]["sustained"] is None
    # a claim whose variant never ran: listed, with no number and no verdict
    claims = [row for row in _table(text, "## ResDex's claims") if "TRPO" in row[0]]
    assert len(claims) == 3 and all(row[3:] == [MISSING, "missing runs"] for row in claims)


def test_rerunning_the_grid_trains_nothing_and_an_unfinished_stage_resumes(smoke_grid, small_data):
    status_path = smoke_grid / "ablations" / "ablations.json"
    status = json.loads(status_path.read_text())
    del status["eval-k1-stage2-seed1-train"]  # as if killed before this evaluation was recorded
    status_path.write_text(json.dumps(status))
    again = run_module("resdex_sb3.ablations", "--preset", "smoke", "--out", str(smoke_grid), "--variants", "k1",
                       "--seeds", "0,1", data=small_data)  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resdex_sb3.train" not in again.stdout  # no training command ran
    assert "eval-k1-stage2-seed1-train: running" in again.stdout
    assert again.stdout.count(": running") == 1


def test_report_is_regenerated_identically_from_the_files(smoke_grid, tmp_path):
    Report(smoke_grid, tmp_path / "again").build()
    assert (tmp_path / "again" / "report.md").read_text().replace(str(tmp_path / "again"), "") == \
        (smoke_grid / "report" / "report.md").read_text().replace(str(smoke_grid / "report"), "")


def test_a_seed_enters_the_curves_once_both_its_stages_are_evaluated(tmp_path):
    """The learning curves take the run folders of the seeds the tables count: a seed whose stage 2 is still
    training (or not evaluated on every split) would cut the seed band short."""

    def seed_runs(seed: int) -> dict[str, Any]:
        return {stage: {"run": f"v/{stage}-seed{seed}",
                        "eval": {split: f"eval/v-{stage}-seed{seed}-{split}.json" for split in SPLITS}}
                for stage in ("stage1", "stage2")}  # fmt: skip

    plan = {"seeds": [0, 1, 2], "variants": {"v": {"label": "v", "settings": {"bases": 1}, "num_bases": 1,
                                                   "runs": {str(s): seed_runs(s) for s in (0, 1, 2)}}}}  # fmt: skip
    (tmp_path / "ablations").mkdir()
    (tmp_path / "ablations" / "grid.json").write_text(json.dumps(plan))
    (tmp_path / "eval").mkdir()
    finished = {0: SPLITS, 1: SPLITS[:2], 2: ()}  # seed 1: stage 2 evaluated on two splits of three; seed 2: training
    for seed, splits in finished.items():
        for stage in ("stage1", "stage2"):
            for split in SPLITS if stage == "stage1" and seed < 2 else splits:
                (tmp_path / "eval" / f"v-{stage}-seed{seed}-{split}.json").write_text("{}")
    folder = RunsFolder(tmp_path)
    assert folder.run_folders("v", "stage1") == [tmp_path / "v" / "stage1-seed0"]
    assert folder.run_folders("v", "stage2") == [tmp_path / "v" / "stage2-seed0"]


def test_a_split_evaluated_on_fewer_seeds_says_so_in_the_seeds_column(tmp_path):
    """Seed 1's stage 2 is evaluated on train only (its other evaluations still to run): Table 2 counts 2 seeds,
    names the splits that have 1, and their cells are seed 0's alone."""
    rows = [{"object": "mug-000", "category": "mug", "sustained": 0.5, "success": 0.5, "held": 0.5}]
    runs = {}
    for seed in ("0", "1"):
        runs[seed] = {stage: {"run": f"ablations/v/{stage}-seed{seed}",
                              "eval": {split: f"ablations/eval/v-{stage}-seed{seed}-{split}.json" for split in SPLITS}}
                      for stage in ("stage1", "stage2")}  # fmt: skip
        for stage in ("stage1", "stage2"):
            for split, path in runs[seed][stage]["eval"].items():
                if seed == "1" and stage == "stage2" and split != "train":
                    continue
                rate = 0.25 if seed == "1" else 0.5
                (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / path).write_text(json.dumps({"sustained": rate, "success": rate, "held": rate,
                                                         "objects": [{**rows[0], "sustained": rate}]}))  # fmt: skip
    plan = {"preset": "smoke", "object_set": "embedded-small", "eval_trials": 1, "bases": ["base-0"],
            "stage1_timesteps": 512, "stage2_timesteps": 512, "pipeline_k": 1, "seeds": [0, 1], "splits": SPLITS,
            "variants": {"v": {"label": "v", "settings": {"bases": 1}, "num_bases": 1, "runs": runs}}}  # fmt: skip
    (tmp_path / "ablations" / "grid.json").write_text(json.dumps(plan))
    Report(tmp_path, tmp_path / "report").build()
    text = (tmp_path / "report" / "report.md").read_text()
    row = next(r for r in _table(text, "## Table 2") if r[0] == "ResDex k=1")
    assert row[1] == "2/2 (unseen obj. 1, unseen cat. 1)"
    assert row[2].startswith("37.5 ± 12.5") and row[5].startswith("50.0 ± 0.0")
    assert next(r for r in _table(text, "## Table 1") if r[0] == "ResDex k=1")[1] == "2/2"


def test_a_variant_that_lost_a_cluster_is_reported_with_the_bases_it_mixes(tmp_path):
    """An own-clustering variant planned with k = 3 whose third cluster had no base that passed its gate mixes two
    bases: the report counts the mixing weights in its evaluations and says k=2 (3 planned), never k=3."""
    objects = [f"mug-00{i}" for i in range(4)]

    def summary(num_weights: int, rate: float) -> dict[str, Any]:
        rows = [{"object": o, "category": "mug", "sustained": rate, "success": rate, "held": rate,
                 "grasp_distance": 10.0, "weights": [1 / num_weights] * num_weights} for o in objects]  # fmt: skip
        return {"sustained": rate, "success": rate, "held": rate, "grasp_distance": 10.0,
                "weights": [1 / num_weights] * num_weights, "objects": rows}  # fmt: skip

    variants = {}
    for name, settings, planned, mixed, rate in (("k1", {"bases": 1}, 1, 1, 0.25), ("k3", {"k": 3}, 3, 2, 0.5)):
        runs = {}
        for seed in (0, 1):
            runs[str(seed)] = {stage: {"run": f"ablations/{name}/{stage}-seed{seed}",
                                       "eval": {split: f"ablations/eval/{name}-{stage}-seed{seed}-{split}.json"
                                                for split in SPLITS}} for stage in ("stage1", "stage2")}  # fmt: skip
            for stage in ("stage1", "stage2"):
                for split, path in runs[str(seed)][stage]["eval"].items():
                    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
                    (tmp_path / path).write_text(json.dumps(summary(mixed, rate)))
        variants[name] = {"label": name, "settings": settings, "num_bases": planned, "runs": runs}
    plan = {"preset": "smoke", "object_set": "embedded-small", "eval_trials": 1, "bases": ["base-0"],
            "stage1_timesteps": 512, "stage2_timesteps": 512, "pipeline_k": 1, "seeds": [0, 1], "splits": SPLITS,
            "variants": variants}  # fmt: skip
    (tmp_path / "ablations" / "grid.json").write_text(json.dumps(plan))
    folder = RunsFolder(tmp_path)
    assert [folder.k_of(v) for v in ("k1", "k3")] == [1, 2]
    assert [folder.k_label(v) for v in ("k1", "k3")] == ["k=1", "k=2 (3 planned)"]
    Report(tmp_path, tmp_path / "report").build()
    text = (tmp_path / "report" / "report.md").read_text()
    assert [row[0] for row in _table(text, "## Table 2")][:2] == ["ResDex k=1", "ResDex k=2 (3 planned)"]
    assert "| 2 (3 planned) | 2/2 |" in text  # Table 5's row
    claims = [row for row in _table(text, "## ResDex's claims") if row[0] == "more bases help"]
    assert claims and all(row[1] == "k=2 (3 planned) - k=1, stage 2, sustained" for row in claims)
    numbers = json.loads((tmp_path / "report" / "report.json").read_text())["numbers"]
    assert set(numbers["table5"]) == {"k=1", "k=2 (3 planned)"}


def test_stage_2_of_a_curve_comes_after_the_whole_of_stage_1(tmp_path):
    """Stage 2 starts from stage 1's best checkpoint (here at 1,000 of stage 1's 3,000 steps) and logs its env steps
    on from there: on the report's axes it comes after everything stage 1 trained, in steps as in wall time, so
    that each seed's curve rises monotonically in x and the seed band is drawn from comparable points."""
    from torch.utils.tensorboard import SummaryWriter

    from resdex_sb3.report_figures import CURVE_TAG, Figures

    t0 = 1_700_000_000.0
    first, second = tmp_path / "stage1", tmp_path / "stage2"
    for run, points in ((first, [(1000, t0, 0.2), (2000, t0 + 50, 0.1), (3000, t0 + 100, 0.05)]),
                        (second, [(1500, t0 + 500, 0.3), (2000, t0 + 520, 0.4)])):  # fmt: skip
        writer = SummaryWriter(str(run / "tb"))
        for step, wall, value in points:
            writer.add_scalar(CURVE_TAG, value, step, walltime=wall)
        writer.close()
    (first / "checkpoint.json").write_text(json.dumps({"num_timesteps": 3000, "model": "checkpoint.zip"}))
    (first / "best").mkdir()
    (first / "best" / "best.json").write_text(json.dumps({"num_timesteps": 1000}))
    figures = Figures(None, tmp_path)
    steps, values = figures._seed_curve("v", (first, second), "steps")
    assert steps.tolist() == [1000, 2000, 3000, 3500, 4000] and values.tolist() == pytest.approx([.2, .1, .05, .3, .4])
    hours, _ = figures._seed_curve("v", (first, second), "wall")
    assert (hours * 3600).tolist() == pytest.approx([0, 50, 100, 100, 120])


def test_a_mixture_whose_bases_all_failed_their_gate_is_refused_not_trained_from_scratch(tmp_path):
    from types import SimpleNamespace

    from resdex_sb3.errors import UserError

    grid = AblationGrid("smoke", tmp_path, variants=["k1"])
    pipeline = SimpleNamespace(out=tmp_path, status_path=tmp_path / "pipeline.json", passed_bases=lambda: [])
    grid.prepared = {None: pipeline}
    with pytest.raises(UserError, match=r"k1: no base of .* passed its gate \(see .*pipeline.json\)"):
        grid._bases_of("k1")
    pipeline.passed_bases = lambda: ["base-0"]
    assert grid._bases_of("k1") == ["base-0"]
