"""Learning curves from the tensorboard event files of run folders."""

from __future__ import annotations

from pathlib import Path


def read_scalar(run: Path, tag: str) -> tuple[list[int], list[float]]:
    """(steps, values) of ``tag`` over every event file under ``run``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for events in sorted(run.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            points.update({e.step: e.value for e in acc.Scalars(tag)})
    steps = sorted(points)
    return steps, [points[s] for s in steps]


def plot_runs(runs: dict[str, Path], tag: str, out: Path) -> Path | None:
    """One plot of ``tag`` against env steps for every run that logged it; None when none did."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    plotted = 0
    for name, run in runs.items():
        steps, values = read_scalar(run, tag)
        if steps:
            ax.plot(steps, values, label=name)
            plotted += 1
    if not plotted:
        plt.close(fig)
        return None
    ax.set_xlabel("env steps")
    ax.set_ylabel(tag)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
