"""resdex_sb3: ResDex on Stable-Baselines3 — policies, training, distillation, evaluation and their CLIs.

The project's world (``envs``) and its callbacks (``callbacks``) are top-level packages beside this one, as the
design card lays them out. A generic name can be taken by another project in the same environment, so importing
this package checks, without importing them, that ``envs`` and ``callbacks`` resolve to the ones installed with
it, and otherwise fails at once with one line naming both paths.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__version__ = "0.1.0"

SIBLING_PACKAGES = ("envs", "callbacks")


def _check_sibling_packages() -> None:
    home = Path(__file__).resolve().parent.parent
    for name in SIBLING_PACKAGES:
        spec = importlib.util.find_spec(name)
        found = Path(spec.origin).resolve().parent if spec is not None and spec.origin else None
        if found != home / name:
            raise ImportError(f"resdex_sb3 needs its own '{name}' package at {home / name}, but '{name}' resolves to "
                              f"{found or 'nothing'}: another project's '{name}' shadows it; install resdex_sb3 in "
                              "its own virtual environment (make install creates .venv)")  # fmt: skip


_check_sibling_packages()
