"""The ``--ray`` entry points of the commands: check the paths and the address, join the cluster, run, leave.

Shared by ``python -m resdex_sb3.pipeline --ray ...`` (:func:`run_pipeline`) and
``python -m resdex_sb3.evaluate --ray ...`` (:func:`joined`). Everything that can be checked before any work is:
the address answers, the output folder can be made, the object data directory exists, and every node sees both
at the same path. A failed check is a one-line ``RayClusterError`` (the commands exit with 2); nothing has run.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from resdex_sb3.ray_cluster import RayCluster, RayClusterError
from resdex_sb3.stage import StopAfterStage


def resolve_data_dir(data_dir: str | None) -> Path:
    """The object data directory a command uses (``--data-dir``, else ``$RESDEX_DATA``, else ``data/``), absolute;
    it must exist, as every node reads it (the pipeline's objects stage fills it, but does not create it)."""
    from envs.objects.store import resolve_data_dir as default_dir

    path = default_dir(data_dir).expanduser().resolve()
    if not path.is_dir():
        raise RayClusterError(f"the object data directory {path} does not exist (--data-dir, else $RESDEX_DATA, "
                              "else data/): create it on a filesystem every node of the cluster mounts")  # fmt: skip
    return path


def make_out(out: Path) -> Path:
    """``out``, absolute and created; a one-line ``RayClusterError`` when it cannot be."""
    out = out.expanduser().resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RayClusterError(f"--out {out} cannot be created ({err.strerror or err})") from None
    return out


@contextmanager
def joined(address: str, shared: dict[str, Path], data_dir: Path, num_cpus: int | None = None) -> Iterator[RayCluster]:
    """The cluster at ``address`` (checked first), joined with ``$RESDEX_DATA`` = ``data_dir`` for its workers,
    after checking that every node sees each folder of ``shared``; left at the end.

    :param address: ``--ray``'s value.
    :param shared: what -> folder every node must see (the output folder, the object data).
    :param data_dir: the object data directory, absolute.
    :param num_cpus: CPUs of a ``local`` cluster.
    """
    cluster = RayCluster(address, num_cpus, env={"RESDEX_DATA": str(data_dir)})
    cluster.connect()
    try:
        cluster.check_shared(shared)
        yield cluster
    finally:
        cluster.shutdown()


def run_pipeline(pipeline: Any, address: str, cpus_per_job: float = 2, gpus_per_job: float | None = None) -> int:
    """``pipeline.run()`` on the Ray cluster at ``address``; the command's exit status.

    :param pipeline: a ``resdex_sb3.pipeline.Pipeline``; its ``out`` and ``data_dir`` become absolute.
    :param address: ``--ray``'s value (``local``, ``auto``, ``HOST:PORT``).
    :param cpus_per_job: CPUs per training job.
    :param gpus_per_job: GPUs per training job (None: 1 where the cluster has GPUs, else 0).
    """
    from resdex_sb3.ray_executor import RayExecutor, StagesFailed

    try:
        RayCluster.check_address(address)  # before touching any folder
        pipeline.out = make_out(pipeline.out)
        pipeline.status_path = pipeline.out / pipeline.STATUS_FILE
        if pipeline.data_dir:
            pipeline.data_dir = str(Path(pipeline.data_dir).expanduser().resolve())
        data_dir = resolve_data_dir(pipeline.data_dir)
        with joined(address, {"--out": pipeline.out, "the object data directory": data_dir}, data_dir) as cluster:
            executor = RayExecutor(cpus_per_job, gpus_per_job, dashboard_url=cluster.dashboard_url)
            pipeline.run(executor)
    except RayClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except StopAfterStage as stop:
        print(f"[pipeline] stopped after {stop} (--until)")
    except StagesFailed as err:
        print(f"[pipeline] error: {err} (see {pipeline.status_path})", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("[pipeline] interrupted", file=sys.stderr)
        return 130
    return 0
