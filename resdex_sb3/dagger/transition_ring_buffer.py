"""The last few steps of every env, as (observation, expert action) rows, served as shuffled minibatches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch as th


class TransitionRingBuffer:
    """A fixed-size FIFO of labelled observations that imitation's BC can train on directly.

    ResDex keeps a rolling buffer of the last 8 steps of every env and trains on the whole of it after each new
    step. This is that buffer in host memory: ``add`` writes a batch of rows over the oldest ones, and iterating
    yields one epoch of minibatches in a fresh random order, as the ``{"obs", "acts"}`` mappings imitation's
    ``BC.set_demonstrations`` accepts. While it is still filling, an epoch covers the rows written so far.

    :param capacity: rows kept (envs x steps kept).
    :param obs_dim: observation width.
    :param act_dim: action width.
    :param batch_size: rows per minibatch; an epoch has ``max(1, len // batch_size)`` of them (fewer rows than
        one batch are drawn with replacement).
    :param seed: seed of the minibatch order.
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, batch_size: int, seed: int = 0) -> None:
        if capacity < 1 or batch_size < 1:
            raise ValueError(f"capacity and batch_size must be positive, got {capacity} and {batch_size}")
        self.capacity = int(capacity)
        self.batch_size = int(batch_size)
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.acts = np.zeros((capacity, act_dim), dtype=np.float32)
        self.size = 0
        self.cursor = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, acts: np.ndarray) -> None:
        """Append a batch of rows (one env step of every env), overwriting the oldest."""
        n = len(obs)
        if n > self.capacity:
            obs, acts, n = obs[-self.capacity :], acts[-self.capacity :], self.capacity
        rows = (self.cursor + np.arange(n)) % self.capacity
        self.obs[rows] = obs
        self.acts[rows] = acts
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def __iter__(self) -> Iterator[dict[str, th.Tensor]]:
        if self.size == 0:
            return
        if self.size < self.batch_size:
            batches = [self.rng.integers(0, self.size, self.batch_size)]
        else:
            order = self.rng.permutation(self.size)
            count = self.size // self.batch_size
            batches = [order[k * self.batch_size : (k + 1) * self.batch_size] for k in range(count)]
        for index in batches:
            yield {"obs": th.from_numpy(self.obs[index]), "acts": th.from_numpy(self.acts[index])}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (rows, cursor, fill, shuffling state)."""
        return {"obs": self.obs[: self.size].copy(), "acts": self.acts[: self.size].copy(), "size": self.size,
                "cursor": self.cursor, "rng": self.rng.bit_generator.state}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        size = int(state["size"])
        if size > self.capacity or state["obs"].shape[1:] != self.obs.shape[1:]:
            raise ValueError(f"saved buffer ({size} rows of {state['obs'].shape[1:]}) does not fit this one "
                             f"({self.capacity} rows of {self.obs.shape[1:]})")  # fmt: skip
        self.obs[:size], self.acts[:size] = state["obs"], state["acts"]
        self.size, self.cursor = size, int(state["cursor"]) % self.capacity
        self.rng.bit_generator.state = state["rng"]
