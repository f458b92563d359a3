"""Running the pipeline's stage graph on a Ray cluster (``python -m resdex_sb3.pipeline --ray ...``).

**Why plain Ray tasks.** The pipeline is a fixed graph of coarse stages whose shape the pipeline's own results
decide (how many clusters, which bases pass their gate), each stage a function that mostly waits for a training
subprocess. Ray tasks fit that exactly:

- a task per stage, submitted by the driver once its dependencies are done, asking for what the stage needs
  (``num_cpus`` per training job, a GPU where the cluster has them, one CPU per evaluation), so Ray packs the
  jobs onto the nodes; no scheduler of ours;
- Ray's failure handling: ``max_retries`` reruns a stage whose worker died (a node lost, a process killed), and
  ``retry_exceptions`` reruns one whose training command was killed by a signal
  (``resdex_sb3.stage_command.StageInterrupted``); a rerun continues from the run folder's last atomic
  checkpoint because the stage functions always do (``Pipeline._train`` counts the steps still to do from
  ``checkpoint.json``); ``ray.cancel`` stops this run's tasks on Ctrl-C.

Actors would add state the stages do not have (every stage's state is its run folder, on the shared filesystem).
Ray Tune schedules trials of one trainable over a search space, with its own stopping, checkpoint and result
layout; our stages are heterogeneous, depend on each other, already checkpoint into run folders, and are
recorded in ``pipeline.json``, so Tune would mean a second layout and a second record for the same runs. A grid
of seeds is already a set of independent branches of this graph (``seeds`` in ``zoo_configs/pipeline.yml``), and
an ablation grid can become more branches the same way.

**One writer.** The driver alone writes ``pipeline.json``: it records a stage as running when it submits it and
as done or failed when its result comes back, through the same ``Pipeline`` methods as the serial ``_timed``, so
each record looks as it does serially (its ``seconds`` are the worker's time for the attempt that finished).
The stage functions write only their own run folders, ``eval/`` files and ``results.md``.

**Failures.** A stage that fails for good (its retries spent, or an error that is not a kill) is recorded
``failed`` with its error; the stages that depend on it are not started, every other branch runs to its end, and
the run ends with :class:`StagesFailed`. Ctrl-C cancels every running task of this run (its workers, and with
them their training processes, are killed), records those stages ``failed`` with ``KeyboardInterrupt()`` as the
serial pipeline does, and leaves every finished stage reusable by the next run.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from resdex_sb3 import stage_command
from resdex_sb3.stage import StageCall, StopAfterStage
from resdex_sb3.stage_graph import StageGraph
from resdex_sb3.stage_progress import StageProgress

#: ``kill-worker-at-checkpoint:<stage record>:<marker file>``: a fault to inject, for tests. The worker running
#: that stage kills itself (SIGKILL) as soon as the stage's run folder has a checkpoint, unless the marker file
#: exists (it is created first, so the retry runs undisturbed).
FAULT_ENV = "RESDEX_RAY_FAULT"
TRAIN_RETRIES = 3
LIGHT_RETRIES = 3


class StagesFailed(RuntimeError):
    """Stages that failed for good (recorded ``failed`` in ``pipeline.json``) while the others ran to their end.

    :param failed: stage record -> error.
    :param blocked: stages not run because a stage they depend on failed.
    """

    def __init__(self, failed: dict[str, str], blocked: list[str]) -> None:
        self.failed, self.blocked = failed, blocked
        names = ", ".join(failed)
        more = f"; not run, as they depend on them: {', '.join(blocked)}" if blocked else ""
        super().__init__(f"{len(failed)} stage(s) failed: {names}{more}")


@dataclass
class _Running:
    """A submitted stage: its node, its call, its previous record, and when it was submitted."""

    node: str
    call: StageCall
    previous: dict[str, Any]
    submitted: float


def _inject_fault(call: StageCall) -> None:
    """The test hook of :data:`FAULT_ENV`."""
    spec = os.environ.get(FAULT_ENV, "")
    kind, _, rest = spec.partition(":")
    stage, _, marker = rest.partition(":")
    if kind != "kill-worker-at-checkpoint" or stage != call.record or call.run_dir is None or Path(marker).exists():
        return
    checkpoint = call.run_dir / "checkpoint.json"

    def watch() -> None:
        while not checkpoint.exists():
            time.sleep(0.02)
        Path(marker).write_text(f"killed worker {os.getpid()} at {checkpoint.read_text()}")
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True).start()


def _driver_threads() -> dict[str, Any]:
    """The driver's thread settings, which a serial run would give every stage (see :func:`_as_on_driver`)."""
    import torch

    return {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}


def _as_on_driver(threads: dict[str, Any]) -> None:
    """Give this worker the driver's thread settings. Ray sets ``OMP_NUM_THREADS`` to a task's ``num_cpus``, so
    torch would run with one thread where the serial pipeline runs with the machine's cores; the shape encoder's
    floating-point sums, hence its codes and everything trained on them, would then differ from a serial run's."""
    import torch

    if threads["OMP_NUM_THREADS"] is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = threads["OMP_NUM_THREADS"]
    torch.set_num_threads(threads["torch"])


def _run_stage(call: StageCall, threads: dict[str, Any]) -> dict[str, Any]:
    """The body of every stage task, on a Ray worker: the stage function, timed, as the driver would run it."""
    stage_command.ON_RAY_WORKER = True
    _as_on_driver(threads)
    _inject_fault(call)
    began = time.perf_counter()
    result = call.fn(*call.args)
    return {"result": result, "seconds": time.perf_counter() - began}


_remote_stage = ray.remote(_run_stage)


class RayExecutor:
    """Runs a ``Pipeline``'s stage graph on a connected Ray cluster (``resdex_sb3.ray_cluster.RayCluster``).

    :param cpus_per_job: CPUs a training or distillation stage asks for (its physics threads).
    :param gpus_per_job: GPUs (a fraction shares one) a training stage asks for; None: 1 where the cluster has
        GPUs, else 0.
    :param progress_every: seconds between two rounds of progress lines.
    :param dashboard_url: printed with the progress when a dashboard is up.
    """

    def __init__(self, cpus_per_job: float = 2, gpus_per_job: float | None = None, progress_every: float = 30.0,
                 dashboard_url: str | None = None) -> None:  # fmt: skip
        self.cpus_per_job, self.progress_every, self.dashboard_url = cpus_per_job, progress_every, dashboard_url
        if gpus_per_job is None:
            gpus_per_job = 1.0 if ray.cluster_resources().get("GPU", 0) >= 1 else 0.0
        self.gpus_per_job = gpus_per_job
        self._threads = _driver_threads()

    def _options(self, call: StageCall) -> dict[str, Any]:
        if call.kind == "train":
            return {"num_cpus": self.cpus_per_job, "num_gpus": self.gpus_per_job, "max_retries": TRAIN_RETRIES,
                    "retry_exceptions": [stage_command.StageInterrupted], "name": call.record}  # fmt: skip
        return {"num_cpus": 1, "max_retries": LIGHT_RETRIES, "retry_exceptions": [stage_command.StageInterrupted],
                "name": call.record}  # fmt: skip

    def run(self, pipeline: Any, graph: StageGraph) -> dict[str, Any]:
        """Run ``graph`` (stages of ``pipeline``, up to ``pipeline.until``): each stage once its dependencies are
        done, those of them that are independent at once. Returns node -> result; raises :class:`StagesFailed`
        when some stage failed for good (after the others finished), ``StopAfterStage`` after ``--until``'s stage,
        and ``KeyboardInterrupt`` after cancelling this run's tasks."""
        graph = graph.until(pipeline.until)
        results: dict[str, Any] = {}
        failed: dict[str, tuple[str, str]] = {}  # node -> (its record, the error)
        blocked: list[str] = []
        pending = graph.names
        running: dict[ray.ObjectRef, _Running] = {}
        progress = StageProgress()
        if self.dashboard_url:
            print(f"[ray] dashboard: {self.dashboard_url}")
        last_progress = time.monotonic()
        try:
            while pending or running:
                for node in list(pending):
                    deps = graph[node].deps
                    if any(d in failed or d in blocked for d in deps):
                        pending.remove(node)
                        blocked.append(node)
                        continue
                    if not all(d in results for d in deps):
                        continue
                    pending.remove(node)
                    self._start(pipeline, graph, node, results, failed, running)
                if not running:
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=min(self.progress_every, 5.0))
                for ref in ready:
                    self._collect(pipeline, ref, running.pop(ref), results, failed)
                if time.monotonic() - last_progress >= self.progress_every and running:
                    last_progress = time.monotonic()
                    now_running = [(r.call.record, r.call.run_dir, r.submitted) for r in running.values()]
                    for line in progress.lines(now_running):
                        print(line)
                    if self.dashboard_url:
                        print(f"[ray] dashboard: {self.dashboard_url}")
        except KeyboardInterrupt:
            self._cancel(pipeline, running)
            raise
        if failed:
            raise StagesFailed(dict(failed.values()), blocked)
        if pipeline.until is not None and pipeline.until in graph:
            raise StopAfterStage(pipeline.until)
        return results

    def _start(self, pipeline: Any, graph: StageGraph, node: str, results: dict[str, Any],
               failed: dict[str, tuple[str, str]], running: dict[ray.ObjectRef, _Running]) -> None:  # fmt: skip
        """Build the node's call; reuse a done record, run a driver stage here, or submit a task."""
        try:
            call = graph[node].build(results)
        except Exception as err:  # a stage that cannot start (no base passed its gate, say): it failed for good
            pipeline.fail(node, pipeline.begin(node), repr(err), 0.0)
            failed[node] = (node, repr(err))
            print(f"[pipeline] {node}: failed: {err!r}")
            return
        if call is None:
            results[node] = None
            return
        reusable, result = pipeline.reusable(call.record, call.args)
        if reusable:
            print(f"[pipeline] {call.record}: done, skipped")
            results[node] = result
            return
        if call.kind == "driver":  # here, recorded as the others (``_timed`` would stop at ``--until``)
            print(f"[pipeline] {call.record}: running")
            try:
                results[node] = pipeline.run_recorded(call.record, call.fn, call.args)
            except Exception as err:  # failed for good; Ctrl-C (recorded too) goes on up
                failed[node] = (call.record, repr(err))
                print(f"[pipeline] {call.record}: failed: {err!r}")
            return
        print(f"[pipeline] {call.record}: running on the cluster")
        previous = pipeline.begin(call.record)
        ref = _remote_stage.options(**self._options(call)).remote(call, self._threads)
        running[ref] = _Running(node, call, previous, time.monotonic())

    @staticmethod
    def _collect(pipeline: Any, ref: ray.ObjectRef, run: _Running, results: dict[str, Any],
                 failed: dict[str, tuple[str, str]]) -> None:  # fmt: skip
        """Record a finished task: done with its result, or failed with its error."""
        try:
            outcome = ray.get(ref)
        except ray.exceptions.RayError as err:
            error = _error_text(err)
            pipeline.fail(run.call.record, run.previous, error, time.monotonic() - run.submitted)
            failed[run.node] = (run.call.record, error)
            print(f"[pipeline] {run.call.record}: failed: {error}")
            return
        pipeline.finish(run.call.record, run.previous, run.call.args, outcome["result"], outcome["seconds"])
        results[run.node] = outcome["result"]
        print(f"[pipeline] {run.call.record}: done in {outcome['seconds']:.1f} s")

    @staticmethod
    def _cancel(pipeline: Any, running: dict[ray.ObjectRef, _Running]) -> None:
        """Ctrl-C: cancel this run's tasks (their workers die, and their training processes with them)."""
        for ref, run in running.items():
            try:
                ray.cancel(ref, force=True)
            except Exception as err:  # noqa: BLE001 - a task that just finished cannot be cancelled
                print(f"[ray] {run.call.record}: not cancelled ({err!r})")
            pipeline.fail(run.call.record, run.previous, repr(KeyboardInterrupt()), time.monotonic() - run.submitted)
        if running:
            print(f"[ray] interrupted: cancelled {', '.join(r.call.record for r in running.values())}; finished "
                  "stages are kept and reused by the next run")  # fmt: skip


def _error_text(err: Exception) -> str:
    """The stage's own error when Ray wraps one (``RayTaskError``), else Ray's (a worker that died for good)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException):
        return repr(cause)
    first = str(err).strip().splitlines()
    return f"{type(err).__name__}: {first[0] if first else ''}"
