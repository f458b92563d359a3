"""A small PointNet that turns an object's surface points into a 64-d shape code.

The reference (ResDex) clusters its training objects with a 64-d ``pc_feat`` from an unreleased pretrained
classifier. This encoder stands in for it; ``train_encoder.py`` says how it is trained.

Layers, for an input of B clouds of N points each::

    xyz * input_scale                       (B, N, 3)   metres -> O(1) units; size is kept, not normalised away
    shared MLP 3 -> 64 -> 128, ReLU         (B, N, 128) the same weights for every point (a 1x1 convolution)
    max over the N points                   (B, 128)    order-invariant, and robust to how many points there are
    Linear 128 -> 128, ReLU                 (B, 128)
    Linear 128 -> code_dim                  (B, 64)     no activation: like pc_feat, the code is pre-ReLU

The reference student's PointNet is wider (6 -> 128 -> 256); this one is narrower because it only has to
tell apart a few hundred objects and must train in about a minute on two CPU cores (a 256-wide last layer
costs four times as much per point and did not cluster the ``default`` set differently). Codes are not
normalised: like pc_feat (about -35..17), they reach a few tens, so scale them (the reference uses 0.1)
before feeding them to a policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ENCODE_POINTS = 512  # points per view in encode() and, by default, in the training views
ENCODE_YAWS = 8  # encode() averages this many views, rotated by multiples of 360 / ENCODE_YAWS degrees
_ENCODE_SEED = 0  # fixed seed of the per-view point subsets, so a cloud always gets the same code


class PointNetEncoder(nn.Module):
    """Per-point shared MLP, max-pool, then an MLP head that outputs the shape code.

    :param code_dim: size of the shape code (64, like the reference's pc_feat).
    :param point_widths: output widths of the shared per-point layers, in order.
    :param head_width: width of the hidden layer between the pooled feature and the code.
    :param input_scale: factor applied to the points before the first layer; 10 turns objects of 5 to 25 cm
        into coordinates of about 0.25 to 1.25, and keeps their metric size, which matters for grasping.
    """

    def __init__(
        self,
        code_dim: int = 64,
        point_widths: Sequence[int] = (64, 128),
        head_width: int = 128,
        input_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.code_dim = code_dim
        self.input_scale = input_scale
        layers: list[nn.Module] = []
        width = 3
        for out in point_widths:
            layers += [nn.Linear(width, out), nn.ReLU()]
            width = out
        # nn.Linear on (B, N, C) acts on the last axis, so it is the same per-point layer as a 1x1 Conv1d
        self.point_mlp = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(width, head_width), nn.ReLU(), nn.Linear(head_width, code_dim))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Codes (B, code_dim) of clouds (B, N, 3) given in metres in the object frame."""
        if points.ndim != 3 or points.shape[-1] != 3:
            raise ValueError(f"expected points of shape (B, N, 3), got {tuple(points.shape)}")
        features = self.point_mlp(points * self.input_scale)
        pooled = features.max(dim=1).values
        return self.head(pooled)

    @torch.no_grad()
    def encode(self, points: np.ndarray, num_points: int = ENCODE_POINTS, num_yaws: int = ENCODE_YAWS) -> np.ndarray:
        """The (code_dim,) float32 code of one cloud (N, 3), the same every call for the same cloud.

        The code is the mean over ``num_yaws`` views: view ``k`` is the cloud rotated by ``k * 360 / num_yaws``
        degrees about z (objects are yaw-randomised in the sim) and subsampled to ``num_points`` points with a
        fixed seed. A seeded random subset, rather than the first or every n-th point, matches the random
        subsets seen in training whatever order the caller's points are in.
        """
        cloud = np.asarray(points, dtype=np.float32)
        if cloud.ndim != 2 or cloud.shape[1] != 3 or len(cloud) == 0:
            raise ValueError(f"expected points of shape (N, 3) with N > 0, got {cloud.shape}")
        rng = np.random.default_rng(_ENCODE_SEED)
        views = []
        for k in range(num_yaws):
            # with fewer points than asked for, repeat some: max-pooling ignores duplicates
            index = rng.choice(len(cloud), num_points, replace=len(cloud) < num_points)
            views.append(cloud[index] @ yaw_matrix(2.0 * np.pi * k / num_yaws).T)
        was_training = self.training
        self.eval()
        try:
            codes = self(torch.from_numpy(np.stack(views)))
        finally:
            self.train(was_training)
        return codes.mean(dim=0).numpy().astype(np.float32)


def yaw_matrix(angle: float) -> np.ndarray:
    """(3, 3) float32 rotation by ``angle`` radians about z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=np.float32)
