"""Shape codes: a small PointNet encoder, its training, and the per-object codes that K-means clusters.

ResDex groups its training objects by the 64-d ``pc_feat`` of an unreleased pretrained classifier; this
package trains its own encoder instead (see ``train_encoder.py`` for the objective) and gives every object,
of any split or imported, a deterministic code.
"""

from resdex_sb3.shape.codes import CODES_FILE, ENCODER_FILE, ShapeCodes
from resdex_sb3.shape.pointnet import PointNetEncoder
from resdex_sb3.shape.train_encoder import (
    EncoderTrainConfig,
    encoder_checksum,
    load_encoder,
    load_or_train_encoder,
    save_encoder,
    train_encoder,
)

__all__ = [
    "CODES_FILE",
    "ENCODER_FILE",
    "EncoderTrainConfig",
    "PointNetEncoder",
    "ShapeCodes",
    "encoder_checksum",
    "load_encoder",
    "load_or_train_encoder",
    "save_encoder",
    "train_encoder",
]
