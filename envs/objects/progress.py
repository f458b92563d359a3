"""Progress bars for long object-data steps (points, proposals, mesh decomposition), one tqdm bar per stage."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO


def progress_bars(stream: TextIO | None = None, unit: str = "obj") -> Callable[[str, int, int], None]:
    """A ``progress(stage, done, total)`` callback that draws one bar per stage, closed when ``done >= total``.

    :param stream: where the bars go (default: standard error, so JSON on standard output stays clean).
    :param unit: the unit shown on the bars.
    """
    from tqdm import tqdm

    stream = stream or sys.stderr
    bars: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:  # first report of this stage, or it runs again after its bar was closed
            bar = bars[stage] = tqdm(total=total, desc=stage, unit=unit, leave=False, file=stream)
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()
            del bars[stage]

    return update


def log_line(message: str) -> None:
    """Print one line on standard error without breaking the progress bars drawn there.

    :param message: the line.
    """
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)
