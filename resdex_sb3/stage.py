"""One node of the pipeline's stage graph (``resdex_sb3.stage_graph``) and the call it resolves to.

A node is known before anything runs (its name and the nodes it waits for); what it calls, with which arguments
and under which ``pipeline.json`` record name, is only known once those nodes have results (how many clusters the
shape stage found, which bases passed their gate), so a node holds a ``build`` function from the results so far
to a :class:`StageCall`, or to None when the node has nothing to do (a cluster that does not exist, a base that
was dropped).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: what a stage asks of a Ray cluster: a training job (its CPUs, and a GPU where the cluster has one), a light
#: job (one CPU: evaluations, the object data, the shape codes), or the driver itself (the report, which reads the
#: driver's ``pipeline.json`` records)
KINDS = ("train", "light", "driver")


class StopAfterStage(Exception):
    """Raised once the stage named by ``--until`` is complete (by the serial pipeline and the Ray executor)."""


@dataclass(frozen=True)
class StageCall:
    """What one stage runs, resolved from the results of the stages it depends on.

    :param fn: the stage function (a bound method of the ``Pipeline``); picklable, so it can run on a Ray worker.
    :param args: its positional arguments; with the preset they are the stage's inputs in ``pipeline.json``.
    :param record: the stage's name in ``pipeline.json`` (and for ``--until``); usually the node's own name, but
        for instance ``eval-base-0-try1-train`` for the node ``eval-base-0-train`` when the base's second member
        was kept.
    :param kind: one of :data:`KINDS`.
    :param run_dir: the run folder it trains into, when it trains (progress lines read its checkpoint).
    :param label: the key of its result in the report's table (``<policy>/<split>``), for evaluation stages.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    record: str
    kind: str = "light"
    run_dir: Path | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"stage {self.record}: kind must be one of {KINDS}, not {self.kind!r}")


@dataclass(frozen=True)
class Stage:
    """A node of the stage graph.

    :param name: the node's name (unique in its graph).
    :param deps: names of the nodes whose results ``build`` needs; they come earlier in the graph's order.
    :param build: from the results so far (node name -> result; None for a node that had nothing to do) to the
        call this node makes, or None when it has nothing to do.
    """

    name: str
    deps: tuple[str, ...]
    build: Callable[[dict[str, Any]], StageCall | None] = field(repr=False)
