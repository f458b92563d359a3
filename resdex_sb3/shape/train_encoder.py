"""Training the shape encoder: category classification plus instance contrast, on the training objects only.

Objective, per batch of training objects, each seen as two random views (a random yaw about z and a random
subset of ``num_points`` of its surface points, at metric scale)::

    loss = class_weight * CE(classifier(code), category) + contrastive_weight * NT-Xent(projector(code))

Why these two terms:

* **Category classification** is what the reference's (unreleased) pc_feat comes from: the output of a
  pretrained object classifier. It pulls codes of one category together, so K-means on the codes groups
  objects roughly by category, as the reference's clusters do (pill bottles, mugs, bottles, pistols).
* **Instance contrast** (SimCLR's NT-Xent: the two views of an object must find each other among all views
  in the batch) needs no label, so it also shapes the code for geometry the classifier never has to tell
  apart. Instances of one category differ mostly in size and proportions, so telling them apart forces the
  code to keep size, which decides the grasp, and it keeps codes informative for unseen categories and
  imported objects, which a classifier alone would squash onto the nearest training category.
  Both views of a pair differ in yaw and points, so the code also becomes yaw-invariant, as it must be for
  objects that the sim spawns at a random yaw.

A Chamfer reconstruction objective would be the other label-free choice, but its decoder and O(N^2) loss do
not fit the CPU budget (the ``default`` set's 120 training objects must train in about a minute).
Nothing from the unseen splits is used, so their codes measure how the encoder generalises.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from envs.files import atomic_write_bytes
from resdex_sb3.shape.pointnet import ENCODE_POINTS, PointNetEncoder, yaw_matrix

ENCODER_FORMAT = 1


@dataclass(frozen=True)
class EncoderTrainConfig:
    """Encoder architecture and training settings; their hash decides whether a saved encoder can be reused.

    :param code_dim: size of the shape code.
    :param point_widths: widths of the shared per-point layers.
    :param head_width: hidden width between the pooled feature and the code.
    :param input_scale: factor applied to the points (metres) before the first layer.
    :param epochs: passes over the training objects.
    :param batch_size: objects per batch (each contributes two views); more objects give the contrastive
        loss more negatives.
    :param num_points: points per view, drawn at random from the object's surface points.
    :param learning_rate: Adam learning rate.
    :param temperature: NT-Xent temperature.
    :param class_weight: weight of the category classification loss.
    :param contrastive_weight: weight of the instance contrastive loss.
    :param seed: seed of the initial weights and of the augmentations.
    """

    code_dim: int = 64
    point_widths: tuple[int, ...] = (64, 128)
    head_width: int = 128
    input_scale: float = 10.0
    epochs: int = 150
    batch_size: int = 64
    num_points: int = ENCODE_POINTS
    learning_rate: float = 3e-3
    temperature: float = 0.1
    class_weight: float = 1.0
    contrastive_weight: float = 1.0
    seed: int = 0


def build_encoder(config: EncoderTrainConfig) -> PointNetEncoder:
    """An untrained encoder with the architecture of ``config`` (weights from the global torch generator)."""
    return PointNetEncoder(config.code_dim, config.point_widths, config.head_width, config.input_scale)


def train_encoder(
    points: Mapping[str, np.ndarray],
    categories: Mapping[str, str],
    config: EncoderTrainConfig = EncoderTrainConfig(),
    log: Callable[[str], None] | None = None,
) -> tuple[PointNetEncoder, dict[str, Any]]:
    """Train an encoder on the clouds ``points`` (name -> (N, 3), metres) labelled by ``categories``.

    Returns the encoder (in eval mode) and a summary: classes, final losses, training accuracy, seconds.
    The same inputs and config give the same weights: objects are visited in name order, and the initial
    weights and every augmentation come from generators seeded by ``config.seed``.
    """
    if config.epochs < 1:
        raise ValueError(f"encoder epochs must be >= 1, got {config.epochs}")
    names = sorted(points)
    if len(names) < 2:
        raise ValueError(f"the shape encoder needs at least 2 training objects, got {len(names)}")
    missing = [n for n in names if n not in categories]
    if missing:
        raise ValueError(f"no category for training objects {missing[:5]}")
    classes = sorted({categories[n] for n in names})
    labels = torch.tensor([classes.index(categories[n]) for n in names])
    clouds = [np.asarray(points[n], dtype=np.float32) for n in names]

    # seed the weights without disturbing the caller's global torch generator
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        encoder = build_encoder(config)
        classifier = nn.Linear(config.code_dim, len(classes))
        # SimCLR applies the contrastive loss after a small projection, so the code itself keeps the
        # information (size, proportions) that the augmentations would otherwise teach it to drop
        width = config.code_dim
        projector = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 32))
    modules = nn.ModuleList([encoder, classifier, projector])
    optimizer = torch.optim.Adam(modules.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(config.seed)
    num_batches = max(1, int(np.ceil(len(names) / config.batch_size)))

    started = time.perf_counter()
    modules.train()
    summary: dict[str, Any] = {}
    for epoch in range(config.epochs):
        totals = np.zeros(3)
        correct = 0
        # array_split gives near-equal batches, so none is left with a single object and no negatives
        for batch in np.array_split(rng.permutation(len(names)), num_batches):
            views = torch.from_numpy(np.concatenate([_views(clouds, batch, config.num_points, rng) for _ in range(2)]))
            batch_labels = labels[batch].repeat(2)
            codes = encoder(views)
            logits = classifier(codes)
            class_loss = F.cross_entropy(logits, batch_labels)
            contrastive_loss = nt_xent(F.normalize(projector(codes), dim=1), config.temperature)
            loss = config.class_weight * class_loss + config.contrastive_weight * contrastive_loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            totals += len(batch) * np.array([loss.item(), class_loss.item(), contrastive_loss.item()])
            correct += int((logits.argmax(dim=1) == batch_labels).sum())
        loss, class_loss, contrastive_loss = totals / len(names)
        summary = {
            "epochs": epoch + 1,
            "loss": round(float(loss), 4),
            "class_loss": round(float(class_loss), 4),
            "contrastive_loss": round(float(contrastive_loss), 4),
            "train_accuracy": round(correct / (2 * len(names)), 4),
        }
        if log and (epoch + 1 == config.epochs or (epoch + 1) % max(1, config.epochs // 5) == 0):
            log(f"epoch {epoch + 1}/{config.epochs}: loss {loss:.3f} (class {class_loss:.3f}, "
                f"contrastive {contrastive_loss:.3f}), train accuracy {summary['train_accuracy']:.2f}")  # fmt: skip
    encoder.eval()
    summary.update(classes=classes, train_objects=len(names), seconds=round(time.perf_counter() - started, 2))
    return encoder, summary


def _views(clouds: list[np.ndarray], batch: np.ndarray, num_points: int, rng: np.random.Generator) -> np.ndarray:
    """One random view (random yaw, random point subset) of each object in ``batch``: (len(batch), num_points, 3)."""
    out = np.empty((len(batch), num_points, 3), dtype=np.float32)
    for row, i in enumerate(batch):
        cloud = clouds[i]
        index = rng.choice(len(cloud), num_points, replace=len(cloud) < num_points)
        out[row] = cloud[index] @ yaw_matrix(rng.uniform(0.0, 2.0 * np.pi)).T
    return out


def nt_xent(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss for unit vectors ``z`` (2B, d) whose rows i and i + B are two views of one object."""
    n = len(z) // 2
    similarity = z @ z.T / temperature
    similarity.fill_diagonal_(float("-inf"))  # a view is not its own positive
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(similarity, partner)


# ---------------------------------------------------------------------------------------------- fingerprints
def data_fingerprint(points: Mapping[str, np.ndarray], categories: Mapping[str, str] | None = None) -> str:
    """sha256 of the clouds (and categories), in name order: a changed object set gives another value."""
    digest = hashlib.sha256()
    for name in sorted(points):
        digest.update(name.encode() + b"\0")
        if categories is not None:
            digest.update(categories.get(name, "").encode() + b"\0")
        digest.update(np.ascontiguousarray(points[name], dtype=np.float32).tobytes())
    return digest.hexdigest()


def config_hash(config: EncoderTrainConfig, fingerprint: str) -> str:
    """sha256 of the config and the training data fingerprint: equal hashes mean the same training run."""
    payload = json.dumps({"format": ENCODER_FORMAT, "config": asdict(config), "data": fingerprint}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def encoder_checksum(encoder: nn.Module) -> str:
    """sha256 of the weights themselves (not of a file, whose bytes could change with the torch version)."""
    digest = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        digest.update(key.encode() + b"\0")
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------- files
def save_encoder(path: str | os.PathLike[str], encoder: PointNetEncoder, config: EncoderTrainConfig,
                 meta: Mapping[str, Any]) -> None:  # fmt: skip
    """Write ``encoder.pt`` atomically: state_dict, config, and ``meta`` (hashes, training summary)."""
    buffer = io.BytesIO()
    torch.save({"format": ENCODER_FORMAT, "state_dict": encoder.state_dict(), "config": _config_to_dict(config),
                "meta": dict(meta)}, buffer)  # fmt: skip
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_encoder(path: str | os.PathLike[str]) -> tuple[PointNetEncoder, EncoderTrainConfig, dict[str, Any]]:
    """Read an ``encoder.pt``: (encoder in eval mode, its config, its meta)."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: unreadable shape encoder ({err}); delete it to retrain") from err
    if not isinstance(payload, dict) or payload.get("format") != ENCODER_FORMAT:
        raise ValueError(f"{path}: not a shape encoder of format {ENCODER_FORMAT}; delete it to retrain")
    config = _config_from_dict(payload["config"])
    encoder = build_encoder(config)
    encoder.load_state_dict(payload["state_dict"])
    encoder.eval()
    return encoder, config, dict(payload["meta"])


def load_or_train_encoder(
    path: str | os.PathLike[str],
    points: Mapping[str, np.ndarray],
    categories: Mapping[str, str],
    config: EncoderTrainConfig = EncoderTrainConfig(),
    log: Callable[[str], None] | None = None,
) -> tuple[PointNetEncoder, dict[str, Any]]:
    """The encoder at ``path`` if it was trained with this config on these objects, else a new one saved there.

    Training is cheap (seconds to a couple of minutes on CPU), so an interrupted run simply trains again;
    the file only ever appears complete. Returns (encoder, meta); ``meta["reused"]`` says which happened.
    """
    path = Path(path)
    wanted = config_hash(config, data_fingerprint(points, categories))
    if path.exists():
        try:
            encoder, _, meta = load_encoder(path)
        except ValueError as err:
            if log:
                log(f"retraining: {err}")
        else:
            if meta.get("config_hash") == wanted:
                if log:
                    log(f"reusing encoder {path} (config hash {wanted[:12]})")
                return encoder, {**meta, "reused": True}
            if log:
                log(f"retraining: {path} was trained with another config or other objects")
    encoder, summary = train_encoder(points, categories, config, log)
    if log:
        log(f"trained the shape encoder on {len(points)} objects in {summary['seconds']:.1f} s")
    meta = {"config_hash": wanted, "checksum": encoder_checksum(encoder), "training": summary}
    save_encoder(path, encoder, config, meta)
    return encoder, {**meta, "reused": False}


def _config_to_dict(config: EncoderTrainConfig) -> dict[str, Any]:
    data = asdict(config)
    data["point_widths"] = list(config.point_widths)
    return data


def _config_from_dict(data: Mapping[str, Any]) -> EncoderTrainConfig:
    return EncoderTrainConfig(**{**data, "point_widths": tuple(data["point_widths"])})
