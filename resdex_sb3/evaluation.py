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
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from stable_baselines3.common.vec_env import VecEnv

from envs.objects.catalog import ObjectSet, load_object_set
from envs.objects.spec import ObjectSpec
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
    """

    objects: list[str]
    sustained: np.ndarray
    success: np.ndarray
    held: np.ndarray
    trials: int
    object_set_checksum: str | None = None

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
    p = float(np.mean(values))
    z2 = float(stats.norm.ppf(0.5 + level / 2)) ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2) / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def paired_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean per-object difference ``a - b`` of two policies evaluated on the same objects and seeds, with a
    t-interval over objects: ``(mean, low, high)``, clipped to [-1, 1].

    Pairing removes the between-object spread (hard objects are hard for both policies), so the interval is much
    narrower than comparing two split intervals. With one object there is no spread to estimate: the interval is
    the whole possible range [-1, 1]. It has zero width when every object differs by the same amount.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"paired_difference needs two per-object arrays of one shape, got {a.shape} and {b.shape}")
    if len(a) == 0:
        raise ValueError("paired_difference needs at least one object")
    diff = a - b
    mean = float(diff.mean())
    if len(diff) < 2:
        return mean, -1.0, 1.0
    half = float(stats.t.ppf(0.5 + level / 2, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff)))
    return mean, max(-1.0, mean - half), min(1.0, mean + half)


def run_episodes(env: VecEnv, act: Act, episode_length: int, on_step: Callable[[VecEnv, int], None] | None = None,
                 seed: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """One synchronised episode in every env; returns per-env (sustained, success, held).

    ``seed`` re-seeds the envs (``seed + env index``) before the reset, so that repeated evaluations of one env
    start from the same poses; without it the env's own seeding applies.
    """
    if env.get_attr("config", [0])[0].random_initial_progress:
        # desynchronised starts would cut most episodes short: evaluation envs must be built with it off
        raise ValueError("evaluation env was built with random_initial_progress=True")
    if seed is not None:
        env.seed(seed)
    obs = env.reset()
    outcomes = np.zeros((len(METRICS), env.num_envs), dtype=bool)
    finished = np.zeros(env.num_envs, dtype=bool)
    for step in range(episode_length):
        obs, _, dones, infos = env.step(act(obs))
        if on_step is not None:
            on_step(env, step)
        for i in np.flatnonzero(dones & ~finished):  # only the envs that finish, once each
            outcomes[:, i] = [infos[i].get(f"is_{m}", False) for m in METRICS]
        finished |= dones
        if finished.all():
            break
    return outcomes[0], outcomes[1], outcomes[2]


def per_object(names: Sequence[str], sustained: np.ndarray, success: np.ndarray, held: np.ndarray,
               trials: int) -> SplitResult:  # fmt: skip
    """Average env outcomes per object (envs were assigned to objects in contiguous blocks of ``trials``)."""
    order: list[str] = list(dict.fromkeys(names))
    index = {n: i for i, n in enumerate(order)}
    ids = np.array([index[n] for n in names])
    counts = np.bincount(ids, minlength=len(order))

    def share(outcome: np.ndarray) -> np.ndarray:
        return np.bincount(ids, weights=outcome.astype(float), minlength=len(order)) / counts

    return SplitResult(order, share(sustained), share(success), share(held), trials)


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
