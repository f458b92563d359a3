"""Progress lines of the stages running on a Ray cluster: env steps from each run's last checkpoint, and its
latest success rate from its tensorboard events when it has logged one."""

from __future__ import annotations

import time
from pathlib import Path

from resdex_sb3.run_folder import checkpoint_steps, finished_rounds

SUCCESS_TAGS = ("eval/sustained_train", "charts/success_rate")  # the headline first, then the rollouts'


class StageProgress:
    """Formats one line per running stage.

    :param clock: the clock the submission times were taken with (``time.monotonic``).
    """

    def __init__(self, clock=time.monotonic) -> None:  # noqa: ANN001 - a zero-argument callable returning seconds
        self.clock = clock

    def lines(self, running: list[tuple[str, Path | None, float]]) -> list[str]:
        """One line per ``(stage record, its run folder or None, submission time)``."""
        now = self.clock()
        return [self.line(stage, run_dir, now - submitted) for stage, run_dir, submitted in running]

    def line(self, stage: str, run_dir: Path | None, elapsed: float) -> str:
        """``[ray] <stage>: <steps> env steps, success <rate> (<tag>), <elapsed> s``; the parts it can read."""
        parts = [f"[ray] {stage}:"]
        run = self._latest_attempt(run_dir)
        if run is not None:
            rounds = finished_rounds(run)
            parts.append(f"{rounds} DAgger rounds," if rounds else f"{checkpoint_steps(run):,} env steps,")
            success = self.latest_success(run)
            if success is not None:
                parts.append(f"success {100 * success[1]:.1f} % ({success[0]}),")
        parts.append(f"running {elapsed:.0f} s")
        return " ".join(parts)

    @staticmethod
    def _latest_attempt(run_dir: Path | None) -> Path | None:
        """The run folder a stage is training now: ``base-3`` or, once it moved on, ``base-3-try1`` ..."""
        if run_dir is None:
            return None
        tries = sorted(run_dir.parent.glob(f"{run_dir.name}-try*"), key=lambda p: p.name)
        existing = [p for p in [run_dir, *tries] if p.is_dir()]
        return existing[-1] if existing else run_dir

    @staticmethod
    def latest_success(run: Path) -> tuple[str, float] | None:
        """``(tag, value)`` of the last logged success of ``run`` (see :data:`SUCCESS_TAGS`), or None."""
        if not (run / "tb").is_dir():
            return None
        from resdex_sb3.curves import read_scalar

        for tag in SUCCESS_TAGS:
            try:
                _, values = read_scalar(run / "tb", tag)
            except Exception:  # noqa: BLE001 - an event file being written; the next round reads it
                continue
            if values:
                return tag, float(values[-1])
        return None
