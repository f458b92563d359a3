"""What an importer hands back: the objects it read, their grasp proposals, and the files it skipped."""

from __future__ import annotations

from dataclasses import dataclass, field

from envs.objects.spec import ObjectSpec
from envs.proposals import GraspProposal


@dataclass
class ImportResult:
    """Objects read from disk plus a report of what could not be read.

    :param objects: the imported objects (ids unique within the set, ``category`` and ``split`` filled in).
    :param proposals: object name -> grasp proposals read from the source (empty when it has none).
    :param skipped: (path, reason) for every file or object left out; the rest still import.
    """

    objects: list[ObjectSpec] = field(default_factory=list)
    proposals: dict[str, list[GraspProposal]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
