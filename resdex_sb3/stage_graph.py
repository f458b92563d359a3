"""The pipeline as a graph of stages, and its serial executor.

``Pipeline.stage_graph()`` lists the stages in the order the serial pipeline has always run them (a topological
order: every stage comes after the stages it depends on), each with the stages it depends on. Two executors run
the same graph:

- :meth:`StageGraph.run_serial` (no ``--ray``): one stage after the other, in that order, each through
  ``Pipeline._timed``, so that nothing differs from the pipeline before the graph existed: the first error stops
  the run, ``--until`` stops it after the named stage;
- ``resdex_sb3.ray_executor.RayExecutor`` (``--ray``): every stage whose dependencies are done runs at once on a
  Ray cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from resdex_sb3.stage import Stage, StageCall


class StageGraph:
    """Stages in a topological order, with their dependencies."""

    def __init__(self) -> None:
        self._stages: dict[str, Stage] = {}

    def add(self, name: str, deps: list[str] | tuple[str, ...],
            build: Callable[[dict[str, Any]], StageCall | None]) -> None:  # fmt: skip
        """Append a stage.

        :param name: its node name, unique in the graph.
        :param deps: nodes it waits for; each must have been added before (so the insertion order is a
            topological order, and the serial order).
        :param build: see :class:`resdex_sb3.stage.Stage`.
        """
        if name in self._stages:
            raise ValueError(f"stage {name!r} is already in the graph")
        missing = [d for d in deps if d not in self._stages]
        if missing:
            raise ValueError(f"stage {name!r} depends on {missing}, which are not (yet) in the graph")
        self._stages[name] = Stage(name, tuple(deps), build)

    def __iter__(self) -> Iterator[Stage]:
        return iter(self._stages.values())

    def __len__(self) -> int:
        return len(self._stages)

    def __contains__(self, name: object) -> bool:
        return name in self._stages

    def __getitem__(self, name: str) -> Stage:
        return self._stages[name]

    @property
    def names(self) -> list[str]:
        """Node names in the serial order."""
        return list(self._stages)

    def until(self, name: str | None) -> StageGraph:
        """The stages up to and including the node ``name`` in the serial order (every stage the serial pipeline
        runs before ``--until name`` stops it; a prefix of a topological order keeps every dependency); the whole
        graph when ``name`` is None or no node has that name (a record name such as ``eval-base-0-try1-train``)."""
        if name is None or name not in self._stages:
            return self
        prefix = StageGraph()
        for stage in self:
            prefix._stages[stage.name] = stage
            if stage.name == name:
                break
        return prefix

    def dependents(self, name: str) -> list[str]:
        """Every node that depends on ``name``, directly or not, in the serial order."""
        blocked = {name}
        for stage in self:
            if blocked & set(stage.deps):
                blocked.add(stage.name)
        return [n for n in self._stages if n in blocked and n != name]

    def run_serial(self, timed: Callable[..., Any]) -> dict[str, Any]:
        """Run every stage in the serial order through ``timed(record, fn, *args)`` (``Pipeline._timed``: it
        skips a stage done with the same inputs, records the outcome, and raises ``StopAfterStage`` after
        ``--until``'s stage). Any error stops the run. Returns node name -> result."""
        results: dict[str, Any] = {}
        for stage in self:
            call = stage.build(results)
            results[stage.name] = None if call is None else timed(call.record, call.fn, *call.args)
        return results
