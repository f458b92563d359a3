"""Run the project's command-line modules from a test as a user would: a subprocess from the checkout."""

from __future__ import annotations

import os
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
