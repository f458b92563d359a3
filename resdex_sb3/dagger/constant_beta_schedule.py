"""A constant DAgger beta (imitation ships only decaying schedules, none of which is 0 at round 0)."""

from __future__ import annotations

from imitation.algorithms.dagger import BetaSchedule


class ConstantBetaSchedule(BetaSchedule):
    """The same beta every round.

    ResDex runs DAgger with beta = 0: the student drives every env from the first step and the expert only labels
    the states the student reaches. imitation's default (``LinearBetaSchedule(15)``) instead lets the expert drive
    at first and hands over within 15 rounds.

    :param beta: probability, per env and step, that the expert's action is executed instead of the student's.
    """

    def __init__(self, beta: float = 0.0) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        self.beta = float(beta)

    def __call__(self, round_num: int) -> float:
        return self.beta
