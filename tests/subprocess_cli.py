"""Run the project's command-line modules from a test as a user would (a subprocess from the checkout), and copy
the pipeline folders they write."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str, data: Path, extra_env: dict[str, str] | None = None,
               timeout: float = 900) -> subprocess.CompletedProcess:  # fmt: skip
    """``python -m module args`` from the checkout with ``$RESDEX_DATA`` = ``data`` (and no ``$RAY_ADDRESS``, so a
    command joins only the cluster it is given)."""
    env = {**os.environ, "RESDEX_DATA": str(data), **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def copy_pipeline(source: Path, destination: Path, stages: tuple[str, ...] | None = None,
                  folders: tuple[str, ...] = ()) -> Path:  # fmt: skip
    """A copy of the pipeline folder ``source`` at ``destination`` whose ``pipeline.json`` names the copy's run
    folders (it records absolute paths), so that a pipeline or grid run on the copy reuses and writes only the
    copy.

    :param stages: copy only these stages' records and folders (``shape``, ``base-0`` ...), as if the pipeline
        had stopped after them; None copies everything.
    :param folders: with ``stages``, also copy these run folders without their records (runs a rerun finds done).
    """
    from resdex_sb3.pipeline import Pipeline

    status = (source / Pipeline.STATUS_FILE).read_text()
    if stages is None:
        shutil.copytree(source, destination)
    else:
        destination.mkdir(parents=True)
        for folder in (*stages, *folders):
            if (source / folder).is_dir():
                shutil.copytree(source / folder, destination / folder)
        records = json.loads(status)
        status = json.dumps({stage: records[stage] for stage in stages})
    (destination / Pipeline.STATUS_FILE).write_text(status.replace(str(source), str(destination)))
    return destination
