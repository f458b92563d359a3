"""Learning curves from the tensorboard event files of run folders."""

from __future__ import annotations

from pathlib import Path


AXES = {"steps": "env steps", "wall": "training wall time (h, pauses between processes left out)"}


def _event_files(run: Path, tag: str | None = None) -> list[tuple[float, float, list[tuple[int, float, float]]]]:
    """Per tensorboard event file under ``run`` (one per process that trained it), in the order they were written:
    (first and last wall time of any scalar in it, the (step, wall time, value) points of ``tag``)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = []
    for events in run.rglob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        scalars = acc.Tags().get("scalars", [])
        times = [e.wall_time for name in scalars for e in acc.Scalars(name)]
        if times:
            points = [(e.step, e.wall_time, e.value) for e in acc.Scalars(tag)] if tag in scalars else []
            files.append((min(times), max(times), points))
    return sorted(files, key=lambda f: f[0])


def read_scalar(run: Path, tag: str, x: str = "steps") -> tuple[list[float], list[float]]:
    """(x, values) of ``tag`` over every event file under ``run``; ``x`` is ``steps`` (env steps) or ``wall``
    (hours of training since the run's first logged point: the gaps between a killed process and its continuation
    do not count, as in :func:`training_seconds`). A step logged again by a continuation keeps its newer value."""
    if x not in AXES:
        raise ValueError(f"x must be one of {sorted(AXES)}, got {x!r}")
    points: dict[int, tuple[float, float]] = {}
    trained_before = 0.0  # seconds the earlier processes trained
    for first, last, file_points in _event_files(run, tag):
        points.update({step: (trained_before + wall - first, value) for step, wall, value in file_points})
        trained_before += last - first
    steps = sorted(points)
    if x == "steps":
        return [float(s) for s in steps], [points[s][1] for s in steps]
    return [points[s][0] / 3600.0 for s in steps], [points[s][1] for s in steps]


def training_seconds(run: Path) -> float:
    """Wall time a run trained, from its tensorboard events: first to last point of every process that wrote to
    it, summed (the gaps between a killed process and its continuation do not count)."""
    return sum(last - first for first, last, _ in _event_files(run))


def plot_runs(runs: dict[str, Path], tag: str, out: Path, x: str = "steps") -> Path | None:
    """One plot of ``tag`` against env steps (``x="steps"``) or wall time (``"wall"``) for every run that logged
    it; None when none did."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = 0
    for name, run in runs.items():
        xs, values = read_scalar(run, tag, x)
        if xs:
            ax.plot(xs, values, label=name)
            plotted += 1
    if not plotted:
        plt.close(fig)
        return None
    ax.set_xlabel(AXES[x])
    ax.set_ylabel(tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
