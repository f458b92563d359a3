"""How a pipeline stage runs its training command (``resdex_sb3.train``, ``resdex_sb3.distill``).

Serially, exactly as before: ``subprocess.run(command, check=True)``. On a Ray worker
(``resdex_sb3.ray_executor``), two differences make a killed worker safe to retry:

- the command dies with the worker (Linux ``PR_SET_PDEATHSIG``): an orphaned training process would keep the
  run folder's ``.train.lock`` and race the retry's checkpoints;
- a command killed by a signal (the out-of-memory killer, a node shutting down) raises :class:`StageInterrupted`,
  which the Ray task retries; the retry continues from the run's last atomic checkpoint. Any other failure (an
  exit status) is the stage's own error and is not retried.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

#: set by ``resdex_sb3.ray_executor`` in a Ray worker: commands die with it and a killed one is retriable
ON_RAY_WORKER = False
#: extra arguments for every ``resdex_sb3.train`` command of the pipeline (``shlex`` syntax), e.g.
#: ``--save-freq 100000`` for more frequent checkpoints; read by the ``Pipeline`` when it is built
TRAIN_ARGS_ENV = "RESDEX_TRAIN_ARGS"
_PR_SET_PDEATHSIG = 1


class StageInterrupted(RuntimeError):
    """A stage's command was killed by a signal: the stage can be retried, and continues from its checkpoint."""


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to kill the child when its parent dies (Linux only; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return preexec


def run_stage_command(command: Sequence[str]) -> None:
    """Run a stage's command to its end; a nonzero exit raises ``subprocess.CalledProcessError`` (serially, and
    on a Ray worker when it exited by itself), death by a signal on a Ray worker :class:`StageInterrupted`.

    :param command: the argument vector.
    """
    if not ON_RAY_WORKER:
        subprocess.run(list(command), check=True)
        return
    done = subprocess.run(list(command), preexec_fn=_die_with_parent())  # noqa: PLW1509 - only prctl, no locks
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name if -done.returncode in signal.valid_signals() else "a signal"
        raise StageInterrupted(f"{command[2] if len(command) > 2 else command[0]} was killed by {name} "
                               f"(pid of the worker: {os.getpid()})")  # fmt: skip
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, list(command))
