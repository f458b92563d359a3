"""``python -m resdex_sb3.train --algo ppo --env ResDexHyper [--preset cpu] [rl-zoo flags]``.

rl-zoo's own training CLI (``-conf``, ``-n``, ``--eval-freq``, ``-f``, ``--env-kwargs``, ``--seed``, ``-i``,
``-params`` ...) over our batched env. Added flags: ``--preset NAME`` picks the preset inside
``zoo_configs/ppo.yml`` (default ``cpu``; ``smoke``, ``cpu``, ``paper``, and ``baseline-*`` for the multi-task
baseline); ``--run-dir DIR`` writes the run to DIR instead of rl-zoo's numbered
``<log folder>/<algo>/<env>_<n>``. Env ids may omit ``-v0``.

Examples::

    python -m resdex_sb3.train --algo ppo --env ResDexBase --env-kwargs "objects:['mug-003']"
    python -m resdex_sb3.train --algo ppo --env ResDexHyper --preset smoke \\
        --env-kwargs "base_models:['runs/base-0']" "shape_codes:'runs/shape/embedded/codes.json'"
"""

from __future__ import annotations

import argparse
import fcntl
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import envs  # noqa: F401  (registers the gym ids)
from resdex_sb3.zoo_manager import BatchedExperimentManager, default_config_path

LOCK_FILE = ".train.lock"


def _with_defaults(argv: list[str]) -> list[str]:
    """Our defaults for flags rl-zoo would otherwise default differently."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--env" and i + 1 < len(argv) and not argv[i + 1].endswith("-v0"):
            argv[i + 1] += "-v0"
    if not {"-conf", "--conf-file"} & set(argv):
        argv += ["-conf", default_config_path()]
    if "--eval-freq" not in argv:
        argv += ["--eval-freq", "-1"]  # per-split evaluation runs as a callback (see zoo_configs/ppo.yml)
    if "--save-freq" not in argv:
        argv += ["--save-freq", "200000"]
    if "--num-threads" not in argv:
        argv += ["--num-threads", "1"]  # torch threads fight the physics threads: 1 was ~10x faster on 2 cores
    if not {"-f", "--log-folder"} & set(argv):
        argv += ["-f", "runs/zoo"]
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    ours = argparse.ArgumentParser(add_help=False)
    ours.add_argument("--preset", default="cpu")  # checked against the YAML, whose error lists the presets
    ours.add_argument("--run-dir", default=None)
    known, rest = ours.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    BatchedExperimentManager.preset = known.preset
    BatchedExperimentManager.run_dir = known.run_dir
    import rl_zoo3.train as zoo_train

    zoo_train.ExperimentManager = BatchedExperimentManager  # rl-zoo looks the name up when train() runs
    sys.argv = [sys.argv[0], *_with_defaults(rest)]
    if known.run_dir is None:
        zoo_train.train()
        return
    with run_lock(Path(known.run_dir)):
        zoo_train.train()


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run>/.train.lock`` while training, so that a second process on the same run folder (a rerun
    pipeline, a hand-started continuation) stops with one clear line instead of interleaving checkpoints."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"error: {run_dir} is being trained by another process (it holds {LOCK_FILE})") from None
        yield


if __name__ == "__main__":
    main()
