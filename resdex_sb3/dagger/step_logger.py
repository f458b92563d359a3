"""imitation's logger with a caller-set x-axis, so curves continue across resumed runs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from imitation.util.logger import HierarchicalLogger
from stable_baselines3.common.logger import configure


class StepLogger(HierarchicalLogger):
    """A ``HierarchicalLogger`` whose ``dump`` writes at ``self.step`` whatever step the caller passes.

    imitation's BC dumps at its own counter, which restarts at 0 in every process; DAgger sets ``step`` to the
    number of env steps labelled so far before each round, which a resumed run restores.

    :param folder: where the outputs go.
    :param format_strs: SB3 output formats (``tensorboard``, ``csv``, ``stdout`` ...).
    """

    def __init__(self, folder: str | Path, format_strs: Sequence[str] = ("tensorboard", "csv")) -> None:
        super().__init__(configure(str(folder), list(format_strs)), list(format_strs))
        self.step = 0

    def dump(self, step: int = 0) -> None:
        super().dump(self.step)
