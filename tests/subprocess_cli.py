"""Run the project's command-line modules from a test as a user would (a subprocess from the checkout), and copy
the pipeline folders they write."""

from __future__ import annotations

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


def copy_pipeline(source: Path, destination: Path) -> Path:
    """A copy of the pipeline folder ``source`` at ``destination`` whose ``pipeline.json`` names the copy's run
    folders (it records absolute paths), so that a pipeline or grid run on the copy reuses and writes only the
    copy."""
    from resdex_sb3.pipeline import Pipeline

    shutil.copytree(source, destination)
    status = destination / Pipeline.STATUS_FILE
    status.write_text(status.read_text().replace(str(source), str(destination)))
    return destination
