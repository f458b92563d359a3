"""The one evaluation protocol, shared by ``resdex_sb3.evaluate`` and the periodic evaluation callback.

Protocol: every object of the split gets ``trials`` envs (seeded ``seed + env index``, so the start poses are
fixed); all envs run one full episode, started together, with the policy's deterministic action. Three outcomes
per trial, headline first:

- sustained: the object stayed inside the goal sphere for ``TaskConfig.sustain_steps`` consecutive steps at
  some point (a fly-through does not count, a later drop does not undo it);
- success: it was inside the sphere at any time (the paper's metric, which a fly-through satisfies);
- held: it was inside the sphere on the last step.

An object's number is the share of its trials with the outcome; the split's number is the mean over objects,
with a 95 % Wilson score interval over objects (see :func:`confidence_interval`). Two policies evaluated on the
same objects and seeds are compared per object with :func:`paired_difference`.

Per object it also records the category, the mean grasp distance D (the paper's grasp-pose quality
``-sum_t r_proposal``, over the trials whose object has a grasp proposal) and, for a hyper-policy run through
``ResidualMoEComposer``, the mean softmax mixing weight of each base over all steps of its trials.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from envs.objects.catalog import ObjectSet, load_object_set
from envs.objects.spec import ObjectSpec
from resdex_sb3.composer import ResidualMoEComposer
from resdex_sb3.env_builder import EVALUATION_OPTIONS, build_env, object_set_name, select_objects, split_env_kwargs

Act = Callable[[np.ndarray], np.ndarray]  # batch of observations -> batch of actions
#: The outcomes of a trial, headline first.
METRICS = ("sustained", "success", "held")
#: Env seeds of every evaluation (``EVAL_SEED + env index``): ``evaluate``, the periodic evaluation during training
#: and a student's periodic evaluation all start an object's trials from the same poses.
EVAL_SEED = 1_000_000
#: Split name meaning "exactly the objects the run trains on" (its ``objects``, else its split).
OWN_SPLIT = "own"


@dataclass
class SplitResult:
    """Per-object means and their summary.

    :param objects: object names.
    :param sustained: (objects,) share of trials that kept the object at the goal for ``sustain_steps`` steps.
    :param success: (objects,) share of trials that reached the goal at any time.
    :param held: (objects,) share of trials holding the object at the goal at the end.
    :param trials: trials per object.
    :param object_set_checksum: content checksum of the object set evaluated on, when known.
    :param categories: each object's category, when known.
    :param grasp_distance: (objects,) mean grasp distance D of the trials (NaN for an object without a grasp
        proposal); None when not recorded.
    :param weights: (objects, k) mean mixing weight of each of the k bases over all steps of the object's trials;
        None when the policy is not a hyper-policy run through ``ResidualMoEComposer``.
    :param trial_sustained: (objects, trials) the sustained outcome of each trial, in env (seed) order; None when
        not recorded.
    :param backend: the physics backend the episodes ran on, when known.
    """

    objects: list[str]
    sustained: np.ndarray
    success: np.ndarray
    held: np.ndarray
    trials: int
    object_set_checksum: str | None = None
    categories: list[str] | None = None
    grasp_distance: np.ndarray | None = None
    weights: np.ndarray | None = None
    trial_sustained: np.ndarray | None = None
    backend: str | None = None

    @property
    def mean_sustained(self) -> float:
        return _mean(self.sustained)

    @property
    def mean_success(self) -> float:
        return _mean(self.success)

    @property
    def mean_held(self) -> float:
        return _mean(self.held)

    @property
    def sustained_ci95(self) -> tuple[float, float]:
        return confidence_interval(self.sustained)

    @property
    def ci95(self) -> tuple[float, float]:
        return confidence_interval(self.success)

    @property
    def held_ci95(self) -> tuple[float, float]:
        return confidence_interval(self.held)

    @property
    def mean_grasp_distance(self) -> float | None:
        """Mean grasp distance over the objects that have one; None when none has."""
        if self.grasp_distance is None or np.isnan(self.grasp_distance).all():
            return None
        return float(np.nanmean(self.grasp_distance))

    @property
    def mean_weights(self) -> list[float] | None:
        """Mean mixing weight of each base over objects; None without a composer."""
        if self.weights is None or not len(self.weights):
            return None
        return [float(w) for w in self.weights.mean(axis=0)]


@dataclass
class EpisodeOutcomes:
    """What :func:`run_episodes` records of each env's episode.

    :param sustained: (N,) the object stayed at the goal for ``sustain_steps`` consecutive steps.
    :param success: (N,) it reached the goal at any time.
    :param held: (N,) it was at the goal on the last step.
    :param grasp_distance: (N,) the episode's grasp distance D (NaN where the object has no grasp proposal);
        None when not recorded.
    :param weight_sums: (N, k) each base's softmax mixing weight summed over the episode's steps; None without a
        ``ResidualMoEComposer`` in the env.
    :param steps: (N,) steps of each env's episode; None when not recorded.
    """

    sustained: np.ndarray
    success: np.ndarray
    held: np.ndarray
    grasp_distance: np.ndarray | None = None
    weight_sums: np.ndarray | None = None
    steps: np.ndarray | None = None

    @staticmethod
    def concatenate(parts: Sequence[EpisodeOutcomes]) -> EpisodeOutcomes:
        """The outcomes of several batches of envs, in order, as one (a field missing in any part is None)."""

        def joined(name: str) -> np.ndarray | None:
            arrays = [getattr(part, name) for part in parts]
            return None if any(a is None for a in arrays) else np.concatenate(arrays)

        return EpisodeOutcomes(*(joined(f.name) for f in fields(EpisodeOutcomes)))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def confidence_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of the mean of per-object rates, with n = number of objects.

    A t-interval collapses to zero width when every object scores the same (0 % or 100 % everywhere), which
    says nothing about how sure we are. The Wilson interval treats the mean ``p`` of ``n`` values in [0, 1] as a
    binomial proportion; that is conservative for rates, because a variable in [0, 1] with mean ``p`` has
    variance at most ``p (1 - p)`` (the Bernoulli case), the variance the Wilson interval assumes. It stays
    inside [0, 1] and has positive width for every ``p``, 0 and 1 included. NaNs for no objects.
    """
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    from scipy import stats  # here, not at the top: ~0.7 s of every training process's start-up

    p = float(np.mean(values))
    z2 = float(stats.norm.ppf(0.5 + level / 2)) ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2) / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95,
                      bounds: tuple[float, float] | None = (-1.0, 1.0)) -> tuple[float, float, float]:  # fmt: skip
    """Mean per-object difference ``a - b`` of two policies evaluated on the same objects and seeds, with a
    t-interval over objects: ``(mean, low, high)``, clipped to ``bounds`` (a difference of two rates lies in
    [-1, 1]; None for unbounded quantities such as the grasp distance D).

    Pairing removes the between-object spread (hard objects are hard for both policies), so the interval is much
    narrower than comparing two split intervals. With one object there is no spread to estimate: the interval is
    the whole possible range. It has zero width when every object differs by the same amount.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired_difference needs two per-object arrays of one shape, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("paired_difference needs at least one object")
    lowest, highest = bounds if bounds is not None else (-np.inf, np.inf)
    diff = a - b
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, lowest, highest
    from scipy import stats  # as in confidence_interval

    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    return mean, max(lowest, mean - half), min(highest, mean + half)


def mixing_composer(env: VecEnv) -> ResidualMoEComposer | None:
    """The ``ResidualMoEComposer`` in ``env``'s stack of wrappers (``VecNormalize``, ``VecMonitor`` ... may sit
    above it), or None when the env has none (bases, baselines, vision students)."""
    while isinstance(env, VecEnvWrapper):
        if isinstance(env, ResidualMoEComposer):
            return env
        env = env.venv
    return None


def run_episodes(env: VecEnv, act: Act, episode_length: int, on_step: Callable[[VecEnv, int], None] | None = None,
                 seed: int | None = None) -> EpisodeOutcomes:  # fmt: skip
    """One synchronised episode in every env; returns what each env's episode gave (:class:`EpisodeOutcomes`).

    ``seed`` re-seeds the envs (``seed + env index``) before the reset, so that repeated evaluations of one env
    start from the same poses; without it the env's own seeding applies. With a ``ResidualMoEComposer`` in the
    env, the mixing weights of every step up to an env's end are summed.
    """
    if env.get_attr("config", [0])[0].random_initial_progress:
        # desynchronised starts would cut most episodes short: evaluation envs must be built with it off
        raise ValueError("evaluation env was built with random_initial_progress=True")
    if seed is not None:
        env.seed(seed)
    obs = env.reset()
    composer = mixing_composer(env)
    outcomes = np.zeros((len(METRICS), env.num_envs), dtype=bool)
    grasp_distance = np.full(env.num_envs, np.nan)
    weight_sums = np.zeros((env.num_envs, composer.num_bases)) if composer is not None else None
    steps = np.zeros(env.num_envs, dtype=np.int64)
    finished = np.zeros(env.num_envs, dtype=bool)
    for step in range(episode_length):
        obs, _, dones, infos = env.step(act(obs))
        running = ~finished  # envs whose episode this step belongs to
        steps += running
        if weight_sums is not None:
            weight_sums += np.where(running[:, None], composer.last_weights, 0.0)
        if on_step is not None:
            on_step(env, step)
        for i in np.flatnonzero(dones & running):  # only the envs that finish, once each
            outcomes[:, i] = [infos[i].get(f"is_{m}", False) for m in METRICS]
            distance = infos[i].get("grasp_distance")
            grasp_distance[i] = np.nan if distance is None else distance
        finished |= dones
        if finished.all():
            break
    return EpisodeOutcomes(outcomes[0], outcomes[1], outcomes[2], grasp_distance, weight_sums, steps)


def per_object(names: Sequence[str], sustained: np.ndarray, success: np.ndarray, held: np.ndarray, trials: int,
               categories: Sequence[str] | None = None, grasp_distance: np.ndarray | None = None,
               weight_sums: np.ndarray | None = None, steps: np.ndarray | None = None) -> SplitResult:  # fmt: skip
    """Average env outcomes per object (envs were assigned to objects in contiguous blocks of ``trials``).

    :param names: (N,) each env's object.
    :param sustained: (N,) sustained outcome of each env (likewise ``success`` and ``held``).
    :param trials: trials per object.
    :param categories: (N,) each env's object category (None: not recorded).
    :param grasp_distance: (N,) each env's grasp distance, NaN where none; an object's is the mean over its trials
        that have one (NaN when none has).
    :param weight_sums: (N, k) mixing weights summed over each env's steps, with ``steps`` (N,): an object's
        weights are the mean over all steps of its trials.
    """
    order: list[str] = list(dict.fromkeys(names))
    index = {n: i for i, n in enumerate(order)}
    ids = np.array([index[n] for n in names])
    counts = np.bincount(ids, minlength=len(order))

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=np.asarray(values, dtype=float), minlength=len(order))

    def share(outcome: np.ndarray) -> np.ndarray:
        return total(outcome) / counts

    object_categories = None
    if categories is not None:
        category_of = dict(zip(names, categories))
        object_categories = [category_of[n] for n in order]
    object_distance = None
    if grasp_distance is not None:
        measured = ~np.isnan(grasp_distance)
        with np.errstate(invalid="ignore", divide="ignore"):
            object_distance = total(np.where(measured, grasp_distance, 0.0)) / total(measured)
    object_weights = None
    if weight_sums is not None and steps is not None:
        summed = np.zeros((len(order), weight_sums.shape[1]))
        np.add.at(summed, ids, weight_sums)
        object_weights = summed / np.maximum(total(steps), 1)[:, None]
    in_blocks = len(ids) == len(order) * trials and np.array_equal(ids, np.repeat(np.arange(len(order)), trials))
    trial_sustained = np.asarray(sustained, dtype=bool).reshape(len(order), trials) if in_blocks else None
    return SplitResult(order, share(sustained), share(success), share(held), trials, categories=object_categories,
                       grasp_distance=object_distance, weights=object_weights, trial_sustained=trial_sustained)


def per_object_outcomes(objects: Sequence[ObjectSpec], outcomes: EpisodeOutcomes, trials: int) -> SplitResult:
    """:func:`per_object` of :func:`run_episodes`' outcomes, given each env's object (``env.get_attr("objects")``)."""
    return per_object([o.name for o in objects], outcomes.sustained, outcomes.success, outcomes.held, trials,
                      categories=[o.category for o in objects], grasp_distance=outcomes.grasp_distance,
                      weight_sums=outcomes.weight_sums, steps=outcomes.steps)  # fmt: skip


def spread_over_categories(objects: Sequence[ObjectSpec], limit: int) -> list[ObjectSpec]:
    """At most ``limit`` of ``objects``, taken round-robin over their categories (categories sorted by name,
    objects of a category in their given order), so that a capped evaluation still sees every category it can;
    returned in their given order. Deterministic."""
    members: dict[str, list[str]] = defaultdict(list)
    for obj in objects:
        members[obj.category].append(obj.name)
    # round r takes the r-th object of every category: rank by (round, category)
    rank = {name: (depth, c) for c, cat in enumerate(sorted(members)) for depth, name in enumerate(members[cat])}
    keep = set(sorted(rank, key=rank.__getitem__)[:limit])
    return [o for o in objects if o.name in keep]


def split_env(env_id: str, env_kwargs: Mapping[str, Any], split: str, trials: int, max_objects: int,
              root: Path | None = None, object_set: ObjectSet | None = None) -> VecEnv:  # fmt: skip
    """The periodic-evaluation env of one split: ``trials`` envs per object, at most ``max_objects`` objects
    spread over the split's categories, every env running one whole episode from ``EVAL_SEED``'s poses
    (``EVALUATION_OPTIONS``). ``split`` ``own`` is the run's own objects. ``env_kwargs`` are the run's; relative
    paths in them resolve against ``root``."""
    options, _ = split_env_kwargs(env_kwargs)
    objset = object_set or load_object_set(object_set_name(options), options.get("data_dir"))
    if split == OWN_SPLIT:
        objects = select_objects(objset, options.get("split", "train"), options.get("objects"))
    else:
        objects = select_objects(objset, split, None)
    names = [o.name for o in spread_over_categories(objects, max_objects)]
    kwargs = {**env_kwargs, "split": "all", "objects": names, **EVALUATION_OPTIONS}
    return build_env(env_id, len(names) * trials, EVAL_SEED, kwargs, root=root, object_set=objset)
