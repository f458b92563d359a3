"""Learning curves from the tensorboard event files of run folders."""

from __future__ import annotations

from pathlib import Path


AXES = {"steps": "env steps", "wall": "wall time (h, from the run's first point)"}


def read_scalar(run: Path, tag: str, x: str = "steps") -> tuple[list[float], list[float]]:
    """(x, values) of ``tag`` over every event file under ``run``; ``x`` is ``steps`` (env steps) or ``wall``
    (hours since the run's first logged point, over every process that wrote to it)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if x not in AXES:
        raise ValueError(f"x must be one of {sorted(AXES)}, got {x!r}")
    points: dict[int, tuple[float, float]] = {}
    for events in sorted(run.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points.update({e.step: (e.wall_time, e.value) for e in acc.Scalars(tag)})
    steps = sorted(points)
    if x == "steps" or not steps:
        return [float(s) for s in steps], [points[s][1] for s in steps]
    start = min(wall for wall, _ in points.values())
    return [(points[s][0] - start) / 3600.0 for s in steps], [points[s][1] for s in steps]


def training_seconds(run: Path) -> float:
    """Wall time a run trained, from its tensorboard events: first to last point of every process that wrote to
    it, summed (the gaps between a killed process and its continuation do not count)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    total = 0.0
    for events in sorted(run.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        times = [e.wall_time for tag in acc.Tags().get("scalars", []) for e in acc.Scalars(tag)]
        if times:
            total += max(times) - min(times)
    return total


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
