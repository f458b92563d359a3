"""The Ray path (``--ray``) on a local cluster of 2 CPUs on 127.0.0.1, started once for this module: the smoke
pipeline's stages give the serial run's outputs on the cluster, a worker killed during a base is retried and resumes from its
checkpoint, sharded evaluation equals serial evaluation, and bad setups fail at once with one line.

Budgets are the smoke preset's; the commands run as subprocesses that join the module's cluster by address,
as a user's would."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_cli import REPO, copy_pipeline, run_module

ray = pytest.importorskip("ray")

#: records the serial comparison covers: the shape stage, the bases and their evaluations (deterministic, seeded)
COMPARED = ("shape", "base-0", "base-1", *(f"eval-base-{i}-{s}" for i in (0, 1)
                                           for s in ("train", "unseen_obj", "unseen_cat")))  # fmt: skip
#: the stages the Ray test runs on the cluster (the others it reuses from the serial run)
RERUN_ON_RAY = (*COMPARED, "vision-gt_pose", *(f"eval-vision-gt_pose-{s}" for s in ("train", "unseen_obj", "unseen_cat")),
                "report")  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    """The GCS address of a local 2-CPU cluster on 127.0.0.1, shut down after the module."""
    context = ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                       log_to_driver=False)  # fmt: skip
    yield context.address_info["gcs_address"]
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_pipeline(cluster, small_data, smoke_pipeline, tmp_path_factory) -> Path:
    """The smoke pipeline under --ray, on a copy of the session's serial run with ``RERUN_ON_RAY``'s records,
    run folders and evaluation files deleted: those stages (every kind: the shape stage, training, evaluation,
    distillation and the report) run on the cluster, the others are reused as a rerun reuses them."""
    out = copy_pipeline(smoke_pipeline, tmp_path_factory.mktemp("ray") / "pipe")
    status = json.loads((out / "pipeline.json").read_text())
    for record in RERUN_ON_RAY:
        del status[record]
        shutil.rmtree(out / record, ignore_errors=True)
        (out / "eval" / f"{record.removeprefix('eval-')}.json").unlink(missing_ok=True)
    (out / "pipeline.json").write_text(json.dumps(status))
    done = run_module("resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out), "--ray", cluster,
                      "--ray-cpus-per-job", "1", data=small_data)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for record in RERUN_ON_RAY:
        assert f"[pipeline] {record}: running" in done.stdout, record
    assert "[pipeline] hyper: done, skipped" in done.stdout
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_bad_address_and_paths_fail_at_once_with_one_line(tmp_path, small_data, cluster, capsys, monkeypatch):
    from resdex_sb3 import evaluate, pipeline

    port = _closed_port()
    cases = [
        (["--ray", f"127.0.0.1:{port}"], "no Ray cluster answers at 127.0.0.1"),
        (["--ray", "not-an-address"], "is not a Ray address"),
        (["--ray", cluster, "--data-dir", str(tmp_path / "missing")], "does not exist"),
    ]
    (tmp_path / "a-file").write_text("")
    cases.append((["--ray", cluster, "--out", str(tmp_path / "a-file" / "out")], "cannot be created"))
    # the first as a user runs it; the rest in this process: every check comes before joining a cluster
    out = ["--out", str(tmp_path / "out")]
    failed = run_module("resdex_sb3.pipeline", "--preset", "smoke", *cases[0][0], *out, data=small_data)
    assert failed.returncode == 2 and failed.stderr.strip().count("\n") == 0, failed.stderr[-2000:]
    assert failed.stderr.startswith("error:") and cases[0][1] in failed.stderr
    monkeypatch.setenv("RESDEX_DATA", str(small_data))
    for args, message in cases[1:]:
        code = pipeline.main(["--preset", "smoke", *args, *([] if "--out" in args else out)])
        stderr = capsys.readouterr().err
        lines = stderr.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], (args, stderr)
    assert not (tmp_path / "out" / "pipeline.json").exists()  # nothing ran
    assert evaluate.main(["--model", str(tmp_path), "--ray", f"127.0.0.1:{port}"]) == 2
    stderr = capsys.readouterr().err
    assert stderr.strip().count("\n") == 0 and "no Ray cluster answers" in stderr, stderr


def test_ray_pipeline_gives_the_serial_outputs(ray_pipeline, smoke_pipeline):
    status = json.loads((ray_pipeline / "pipeline.json").read_text())
    assert all(record["status"] == "done" for record in status.values()), status
    from resdex_sb3.pipeline import Pipeline

    assert sorted(status) == sorted(Pipeline("smoke", ray_pipeline).stage_graph().names)  # a record per stage
    table = (ray_pipeline / "results.md").read_text()
    for label in ("method", "baseline", "vision-gt_pose", "vision-camera"):
        assert f"| {label} | train |" in table

    serial = smoke_pipeline  # the session's serial run of the same preset on the same data
    reference = json.loads((serial / "pipeline.json").read_text())
    assert set(COMPARED) <= set(reference)
    for stage in COMPARED:
        ours = json.dumps(status[stage]["result"]).replace(str(ray_pipeline), "OUT")
        theirs = json.dumps(reference[stage]["result"]).replace(str(serial), "OUT")
        assert ours == theirs, stage
    assert (ray_pipeline / "shape" / "clusters.json").read_bytes() == (serial / "shape" / "clusters.json").read_bytes()
    for path in sorted((serial / "eval").glob("base-*.json")):  # the bases' evaluations: deterministic, seeded
        ours, theirs = (json.loads(p.read_text()) for p in (ray_pipeline / "eval" / path.name, path))
        ours.pop("model"), theirs.pop("model")  # the run's path, under either output folder
        assert ours == theirs, path.name


def test_a_killed_worker_is_retried_and_resumes_from_its_checkpoint(cluster, small_data, smoke_pipeline, tmp_path):
    out = copy_pipeline(smoke_pipeline, tmp_path / "pipe", stages=("objects", "shape"))  # base-0 is next
    marker = tmp_path / "killed"
    done = run_module("resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out), "--ray", cluster,
                      "--until", "base-0", "--ray-cpus-per-job", "1", data=small_data,
                      extra_env={"RESDEX_TRAIN_ARGS": "--save-freq 128",  # a checkpoint every 128 of the 512 steps
                                 "RESDEX_RAY_FAULT": f"kill-worker-at-checkpoint:base-0:{marker}"})  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stopped after base-0" in done.stdout
    killed_at = json.loads(marker.read_text().split(" at ", 1)[1])["num_timesteps"]
    assert 0 < killed_at < 512  # the worker died mid-stage, after its first checkpoint
    status = json.loads((out / "pipeline.json").read_text())
    assert status["base-0"]["status"] == "done" and status["base-0"]["result"]["timesteps"] >= 512
    assert json.loads((out / "base-0" / "checkpoint.json").read_text())["num_timesteps"] >= 512
    # the retry continued from the checkpoint, for the steps still to do (rl-zoo's args.yml of the last process)
    args = (out / "base-0" / "ResDexBase-v0" / "args.yml").read_text()
    assert str(out / "base-0" / "checkpoint.zip") in args
    assert f"n_timesteps: {512 - killed_at}\n" in args


def test_sharded_evaluation_equals_serial(ray_pipeline, small_data, cluster, tmp_path):
    common = ["--model", str(ray_pipeline / "hyper"), "--split", "unseen_cat", "--trials", "2", "--max-envs", "4"]
    serial = run_module("resdex_sb3.evaluate", *common, "--json", str(tmp_path / "serial.json"), data=small_data)
    assert serial.returncode == 0, serial.stderr[-3000:]
    sharded = run_module("resdex_sb3.evaluate", *common, "--json", str(tmp_path / "ray.json"), "--ray", cluster,
                         data=small_data)  # fmt: skip
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert "in 2 shards" in sharded.stdout  # 10 objects in 5 chunks of 2 objects, on 2 CPUs
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "serial.json").read_bytes()


def test_shards_are_whole_chunks():
    from resdex_sb3.ray_evaluation import shard_ranges

    assert shard_ranges(10, 2, 4, 2) == [(0, 6), (6, 10)]
    assert shard_ranges(10, 2, 4, 99) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert shard_ranges(3, 10, 1024, 4) == [(0, 3)]


def test_a_stage_that_fails_for_good_is_recorded_and_the_other_branches_finish(cluster, tmp_path):
    import operator

    from resdex_sb3.pipeline import Pipeline
    from resdex_sb3.ray_executor import RayExecutor, StagesFailed
    from resdex_sb3.stage import StageCall
    from resdex_sb3.stage_graph import StageGraph

    pipeline = Pipeline("smoke", tmp_path / "out")
    pipeline.out.mkdir()
    graph = StageGraph()
    graph.add("a", [], lambda r: StageCall(operator.add, (1, 2), "a"))
    graph.add("b", [], lambda r: StageCall(operator.truediv, (1, 0), "b"))
    graph.add("c", ["b"], lambda r: StageCall(operator.add, (r["b"], 1), "c"))
    graph.add("d", ["a"], lambda r: StageCall(operator.mul, (r["a"], 2), "d"))
    with pytest.raises(StagesFailed, match="1 stage.*failed: b; not run.*: c") as failed:
        RayExecutor(cpus_per_job=1, progress_every=1).run(pipeline, graph)
    assert failed.value.blocked == ["c"]
    status = json.loads((pipeline.out / "pipeline.json").read_text())
    assert status["a"]["result"] == 3 and status["d"]["result"] == 6 and status["d"]["status"] == "done"
    assert status["b"]["status"] == "failed" and "ZeroDivisionError" in status["b"]["error"]
    assert "c" not in status


def test_a_command_killed_by_a_signal_on_a_worker_is_retriable(monkeypatch):
    from resdex_sb3 import stage_command

    suicide = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    with pytest.raises(subprocess.CalledProcessError):  # serially: the error it always was
        stage_command.run_stage_command(suicide)
    monkeypatch.setattr(stage_command, "ON_RAY_WORKER", True)
    with pytest.raises(stage_command.StageInterrupted, match="SIGKILL"):
        stage_command.run_stage_command(suicide)
    with pytest.raises(subprocess.CalledProcessError):  # an exit status is the stage's own error: not retried
        stage_command.run_stage_command([sys.executable, "-c", "raise SystemExit(3)"])


def test_ctrl_c_cancels_the_runs_jobs_and_keeps_finished_stages(cluster, small_data, smoke_pipeline, tmp_path):
    import signal
    import time

    out = copy_pipeline(smoke_pipeline, tmp_path / "pipe", stages=("objects", "shape"))  # base-0 is next
    env = {**os.environ, "RESDEX_DATA": str(small_data)}
    driver = subprocess.Popen([sys.executable, "-m", "resdex_sb3.pipeline", "--preset", "smoke", "--out", str(out),
                               "--ray", cluster, "--ray-cpus-per-job", "1"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / "base-0" / "ResDexBase-v0" / "config.yml").exists():  # its training process is under way
            break
        time.sleep(0.2)
    driver.send_signal(signal.SIGINT)
    _, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 130, stderr[-3000:]
    status = json.loads((out / "pipeline.json").read_text())
    assert status["objects"]["status"] == "done" and status["shape"]["status"] == "done"
    assert status["base-0"]["status"] == "failed" and status["base-0"]["error"] == "KeyboardInterrupt()"
    time.sleep(3)
    alive = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p).count(str(out / "base-0"))]
    assert not alive, "the cancelled stage's training process outlived its worker"


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
