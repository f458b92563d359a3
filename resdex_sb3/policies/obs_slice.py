"""A features extractor that hands the networks one contiguous slice of a flat observation."""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor


class ObsSlice(BaseFeaturesExtractor):
    """Features = ``obs[..., start:end]`` of a flat Box observation, with no parameters.

    ResDex feeds each network a prefix of one shared observation vector (the base policies read the
    geometry-unaware base observation at the front of the hyper observation), so slicing is the whole extractor.

    :param observation_space: a 1-D Box observation space.
    :param start: first observation index kept.
    :param end: one past the last index kept; ``None`` keeps everything from ``start`` on.
    """

    def __init__(self, observation_space: spaces.Space, start: int = 0, end: int | None = None) -> None:
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
            raise ValueError(f"ObsSlice needs a 1-D Box observation space, got {observation_space}")
        width = int(observation_space.shape[0])
        stop = width if end is None else int(end)
        if not 0 <= start < stop <= width:
            raise ValueError(f"ObsSlice({start}, {end}) does not fit an observation of width {width}")
        super().__init__(observation_space, features_dim=stop - start)
        self.start = int(start)
        self.end = stop

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return observations[..., self.start : self.end]

    def extra_repr(self) -> str:
        return f"start={self.start}, end={self.end}"
