"""``python -m resdex_sb3.train --algo ppo|trpo --env ResDexHyper [--preset cpu] [rl-zoo flags]``.

rl-zoo's own training CLI (``-conf``, ``-n``, ``--eval-freq``, ``-f``, ``--env-kwargs``, ``--seed``, ``-i``,
``-params`` ...) over our batched env. The default config is the algorithm's own, ``zoo_configs/<algo>.yml``
(``$RESDEX_ZOO_CONFIG``, then ``-conf``, override it). Added flags: ``--preset NAME`` picks the preset inside it
(default ``cpu``; in ``ppo.yml`` ``smoke``, ``cpu``, ``paper``, ``baseline-*`` for the multi-task baseline and
``moe-*`` for the weights-only mixture; ``trpo.yml`` has the hyper-policy's ``smoke`` and ``cpu``);
``--run-dir DIR`` writes the run to DIR instead of rl-zoo's numbered
``<log folder>/<algo>/<env>_<n>``. Env ids may omit ``-v0``.

A run folder that already holds a run is never replaced by accident; the command says which of these to add:

- ``-i MODEL.zip -n N`` (rl-zoo's meaning): train N more steps from MODEL, counting on from its step count (MODEL
  must come from a run of the same ``--algo``: its ``<env id>/args.yml`` says which);
- ``--resume``: continue the run from its last saved model (``checkpoint.zip``, or the final model when it is
  later) until it has trained its budget (``-n``, else the preset's ``n_timesteps``), as the same command with
  ``--resume`` added after a kill; a run that has reached its budget or passed its gate trains no more;
- ``--overwrite``: delete the old run, then train a new one.

A run that fails at start-up (a bad flag, preset, option or base model) leaves no run folder behind.

Examples::

    python -m resdex_sb3.train --algo ppo --env ResDexBase --env-kwargs "objects:['mug-003']"
    python -m resdex_sb3.train --algo ppo --env ResDexBase --run-dir runs/base-0 -n 2000000 --resume
    python -m resdex_sb3.train --algo ppo --env ResDexHyper --preset smoke \\
        --env-kwargs "base_models:['runs/base-0']" "shape_codes:'runs/shape/embedded/codes.json'"
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

import envs  # noqa: F401  (registers the gym ids)
from envs.files import atomic_write, file_lock
from resdex_sb3.errors import UserError, cli_main
from resdex_sb3.run_folder import CHECKPOINT_MODEL, model_algo, passed_gate, resume_point, trained_before
from resdex_sb3.zoo_manager import BatchedExperimentManager, default_config_path, select_preset

LOCK_FILE = ".train.lock"


def _with_defaults(argv: list[str]) -> list[str]:
    """Our defaults for flags rl-zoo would otherwise default differently."""
    argv = list(argv)
    for i, arg in enumerate(argv):
        if arg == "--env" and i + 1 < len(argv) and not argv[i + 1].endswith("-v0"):
            argv[i + 1] += "-v0"
    if not {"-conf", "--conf-file"} & set(argv):
        argv += ["-conf", default_config_path(_zoo_flags(argv).algo)]
    if "--eval-freq" not in argv:
        argv += ["--eval-freq", "-1"]  # per-split evaluation runs as a callback (see zoo_configs/ppo.yml)
    if "--save-freq" not in argv:
        argv += ["--save-freq", "200000"]
    if "--num-threads" not in argv:
        argv += ["--num-threads", "1"]  # torch threads fight the physics threads: 1 was ~10x faster on 2 cores
    if not {"-f", "--log-folder"} & set(argv):
        argv += ["-f", "runs/zoo"]
    return argv


@cli_main
def main(argv: Sequence[str] | None = None) -> None:
    """Train (or continue) one run; see the module docstring.

    :param argv: the command line without the program name (default ``sys.argv[1:]``).
    """
    ours = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    ours.add_argument("--preset", default="cpu")  # checked against the YAML, whose error lists the presets
    ours.add_argument("--run-dir", default=None)
    ours.add_argument("--resume", action="store_true")
    ours.add_argument("--overwrite", action="store_true")
    known, rest = ours.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    zoo_argv = _with_defaults(rest)
    flags = _zoo_flags(zoo_argv)
    _check_flags(known, flags)
    BatchedExperimentManager.preset = known.preset
    BatchedExperimentManager.run_dir = known.run_dir
    import rl_zoo3.train as zoo_train

    zoo_train.ExperimentManager = BatchedExperimentManager  # rl-zoo looks the name up when train() runs
    if known.run_dir is None:
        sys.argv = [sys.argv[0], *zoo_argv]
        zoo_train.train()
        return
    run_dir = Path(known.run_dir)
    with run_lock(run_dir):
        found = trained_before(run_dir)
        if found and not (flags.trained_agent or known.resume or known.overwrite):
            raise UserError(f"{run_dir} already holds a run ({found}); add --resume to continue it to its budget -n, "
                            f"-i {run_dir / CHECKPOINT_MODEL} -n STEPS to train STEPS more, "
                            "or --overwrite to replace it")  # fmt: skip
        if known.overwrite and found:
            _clear_run(run_dir)
        if known.resume:
            more = _resume_args(run_dir, flags, known.preset)
            if more is None:
                return
            zoo_argv += more  # rl-zoo keeps the last -i and -n given
            _check_same_algo(_zoo_flags(zoo_argv))
        sys.argv = [sys.argv[0], *zoo_argv]
        zoo_train.train()


def _zoo_flags(zoo_argv: list[str]) -> argparse.Namespace:
    """The rl-zoo flags our own flags depend on (``--algo``, ``--env``, ``-conf``, ``-n``, ``-i``), read without
    consuming any.

    :param zoo_argv: the command line rl-zoo will parse (our defaults added).
    """
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--algo", default="ppo")  # rl-zoo's default
    parser.add_argument("--env", default="CartPole-v1")  # rl-zoo's default
    parser.add_argument("-conf", "--conf-file", default=None)
    parser.add_argument("-n", "--n-timesteps", type=int, default=-1)
    parser.add_argument("-i", "--trained-agent", default="")
    return parser.parse_known_args(zoo_argv)[0]


def _check_flags(known: argparse.Namespace, flags: argparse.Namespace) -> None:
    """Refuse flag combinations that cannot mean what they say, before anything is written.

    :param known: our flags (``--run-dir``, ``--resume``, ``--overwrite``).
    :param flags: rl-zoo's flags that ours depend on (:func:`_zoo_flags`).
    """
    if (known.resume or known.overwrite) and known.run_dir is None:
        raise UserError(f"{'--resume' if known.resume else '--overwrite'} needs --run-dir (the run folder it acts on)")
    if known.resume and known.overwrite:
        raise UserError("--resume continues the run folder and --overwrite replaces it: give one of them")
    if known.resume and flags.trained_agent:
        raise UserError("--resume picks the run's own last checkpoint: drop -i (or drop --resume to train "
                        f"-n more steps from {flags.trained_agent})")  # fmt: skip
    if flags.trained_agent:
        agent = Path(flags.trained_agent)
        if agent.suffix != ".zip" or not agent.is_file():
            raise UserError(f"-i {agent}: no such model .zip (give a run's checkpoint.zip, best/best_model.zip or "
                            "<env id>.zip)")  # fmt: skip
        if known.overwrite and agent.resolve().is_relative_to(Path(known.run_dir).resolve()):
            raise UserError(f"-i {agent} lies in the run folder that --overwrite would delete")
        _check_same_algo(flags)


def _check_same_algo(flags: argparse.Namespace) -> None:
    """Refuse ``-i MODEL`` of a run trained with another algorithm than ``--algo`` (rl-zoo would load a PPO model
    as TRPO, or the reverse, without a word); a model whose run records no algorithm passes.

    :param flags: rl-zoo's flags that ours depend on (:func:`_zoo_flags`).
    """
    if not flags.trained_agent:
        return
    algo = model_algo(flags.trained_agent, flags.env)
    if algo is not None and algo != flags.algo:
        raise UserError(f"{flags.trained_agent} was trained with --algo {algo} (its run's args.yml), not "
                        f"--algo {flags.algo}: continue it with --algo {algo}")  # fmt: skip


def _clear_run(run_dir: Path) -> None:
    """Delete the run in ``run_dir`` (all but the lock this process holds), as ``--overwrite`` asks.

    :param run_dir: the run folder, locked by this process.
    """
    print(f"--overwrite: deleting the run in {run_dir}", file=sys.stderr)
    for child in run_dir.iterdir():
        if child.name == LOCK_FILE:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _resume_args(run_dir: Path, flags: argparse.Namespace, preset: str) -> list[str] | None:
    """rl-zoo flags that continue ``run_dir`` to its budget (``-n``, else the preset's ``n_timesteps``): ``-i`` of
    its latest saved model and ``-n`` of the steps still missing; ``[]`` to train from 0 when it saved no model;
    None when it has nothing left to do (budget reached, or stopped at its gate).

    :param run_dir: the run folder, locked by this process.
    :param flags: rl-zoo's flags that ours depend on (:func:`_zoo_flags`).
    :param preset: the ``--preset`` (of ``--algo``'s config) whose ``n_timesteps`` is the budget when ``-n`` is not
        given.
    """
    env_id = flags.env
    budget = flags.n_timesteps
    if budget <= 0:
        config = flags.conf_file or default_config_path(flags.algo)
        budget = int(select_preset(config, env_id, preset, flags.algo)["n_timesteps"])
    point = resume_point(run_dir, env_id)
    if point is None:
        print(f"--resume: {run_dir} saved no model yet: training from 0 to {budget:,} steps")
        return []
    model, done = point
    if done >= budget or passed_gate(run_dir):
        why = "passed its gate" if passed_gate(run_dir) else "reached its budget"
        final = run_dir / f"{env_id}.zip"
        if not final.exists():  # killed after its last checkpoint, before the final save: that checkpoint is final
            atomic_write(final, lambda tmp: shutil.copyfile(model, tmp))
            why += f"; its last checkpoint {model} is its final model now"
        print(f"--resume: {run_dir} {why} ({done:,} of {budget:,} steps): nothing to train")
        return None
    print(f"--resume: {run_dir} from {model} at {done:,} of {budget:,} steps: {budget - done:,} more")
    return ["-i", str(model), "-n", str(budget - done)]


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run>/.train.lock`` while training, so that a second process on the same run folder (a rerun
    pipeline, a hand-started continuation) stops with one clear line instead of interleaving checkpoints.

    A run that fails before it saved anything (a bad flag, preset, option or base model) removes the folders this
    made, so that no empty run folder is left behind.

    :param run_dir: the run folder (made when missing).
    """
    created = next((p for p in reversed([run_dir, *run_dir.parents]) if not p.exists()), None)  # topmost new one
    with ExitStack() as stack:
        try:
            stack.enter_context(file_lock(run_dir / LOCK_FILE, blocking=False))
        except BlockingIOError:
            raise UserError(f"{run_dir} is being trained by another process (it holds {LOCK_FILE})") from None
        try:
            yield
        except BaseException:
            if created is not None and trained_before(run_dir) is None:
                shutil.rmtree(created, ignore_errors=True)
            raise


if __name__ == "__main__":
    sys.exit(main())
