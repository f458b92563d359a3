"""The vision student's features: its proprioception next to a PointNet feature of its point cloud."""

from __future__ import annotations

from collections.abc import Sequence

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from envs.vision import CLOUD, NUM_POINTS, PROPRIO, STUDENT_DIM


class PointCloudExtractor(BaseFeaturesExtractor):
    """Features ``[proprio, PointNet(cloud)]`` from the student part of a ``ResDexVision`` observation.

    The privileged part (everything after ``envs.vision.STUDENT_DIM``) is never read, so the expert's inputs
    cannot leak into the student. The PointNet is the reference's (ResDex ``SimplePointNetV0``)::

        each point -> [mean xyz of its cloud, xyz - mean]       (B, P, 6)
        shared per-point MLP 6 -> 128 -> 256, ReLU after both  (B, P, 256)
        max over points of channels 0:128, mean of 128:256     (B, 256)
        Linear 256 -> 256 -> 128, ReLU after both              (B, 128)

    Weights start Xavier-uniform with zero biases, as the reference's.

    :param observation_space: the flat ``ResDexVision`` Box.
    :param point_widths: widths of the shared per-point layers; the last one is split in half between max- and
        mean-pooling.
    :param head_widths: widths of the layers after pooling; the last is the cloud feature size.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        point_widths: Sequence[int] = (128, 256),
        head_widths: Sequence[int] = (256, 128),
    ) -> None:
        if not isinstance(observation_space, spaces.Box) or observation_space.shape[0] < STUDENT_DIM:
            raise ValueError(f"PointCloudExtractor needs a ResDexVision Box of width >= {STUDENT_DIM}, "
                             f"got {observation_space}")  # fmt: skip
        if point_widths[-1] % 2:
            raise ValueError(f"the last per-point width must be even (max / mean halves), got {point_widths[-1]}")
        proprio_dim = PROPRIO.stop - PROPRIO.start
        super().__init__(observation_space, features_dim=proprio_dim + int(head_widths[-1]))
        layers: list[nn.Module] = []
        width = 6
        for out in point_widths:  # nn.Linear acts on the last axis: a shared 1x1 convolution over points
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.point_mlp = nn.Sequential(*layers)
        self.max_channels = width // 2
        head: list[nn.Module] = []
        for out in head_widths:
            head += [nn.Linear(width, out), nn.ReLU()]
            width = out
        self.head = nn.Sequential(*head)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier-uniform weights, zero biases (the reference's PointNet init)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def cloud_feature(self, cloud: th.Tensor) -> th.Tensor:
        """(B, head_widths[-1]) features of clouds (B, P, 3)."""
        centre = cloud.mean(dim=1, keepdim=True)
        per_point = self.point_mlp(th.cat([centre.expand_as(cloud), cloud - centre], dim=-1))
        k = self.max_channels
        pooled = th.cat([per_point[..., :k].max(dim=1).values, per_point[..., k:].mean(dim=1)], dim=-1)
        return self.head(pooled)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        cloud = observations[:, CLOUD].reshape(-1, NUM_POINTS, 3)
        return th.cat([observations[:, PROPRIO], self.cloud_feature(cloud)], dim=1)
