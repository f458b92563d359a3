"""Shape codes of an object set: one 64-d vector per object, saved next to the encoder that made them.

Files in the output folder (both written atomically, so a reader never sees half a file)::

    encoder.pt    state_dict, training config, config hash and weight checksum (see train_encoder.py)
    codes.json    {"set", "encoder_checksum", "points_fingerprint", "views", "codes": {object name: [64 floats]}}

JSON keeps the codes readable and diff-able; floats are written in full, so float32 codes load back bit-exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from envs.objects.spec import ObjectSpec
from envs.files import atomic_write_json, read_json
from resdex_sb3.shape.pointnet import ENCODE_YAWS, PointNetEncoder
from resdex_sb3.shape.train_encoder import EncoderTrainConfig, data_fingerprint, encoder_checksum, load_or_train_encoder

CODES_FORMAT = 1
CODES_FILE = "codes.json"
ENCODER_FILE = "encoder.pt"
TRAIN_SPLIT = "train"


class ShapeCodes:
    """Object name -> shape code (float32, ``code_dim``), with the provenance needed to tell if it is stale.

    :param codes: object name -> code.
    :param set_name: the object set the codes belong to.
    :param encoder_checksum: :func:`~resdex_sb3.shape.train_encoder.encoder_checksum` of the encoder used.
    :param points_fingerprint: :func:`~resdex_sb3.shape.train_encoder.data_fingerprint` of the encoded clouds.
    :param views: how each code was computed: ``{"points": points per view, "yaws": views averaged}``.
    """

    def __init__(
        self,
        codes: Mapping[str, np.ndarray],
        set_name: str,
        encoder_checksum: str,
        points_fingerprint: str = "",
        views: Mapping[str, int] | None = None,
    ) -> None:
        self.codes = {name: np.asarray(code, dtype=np.float32) for name, code in codes.items()}
        self.set_name = set_name
        self.encoder_checksum = encoder_checksum
        self.points_fingerprint = points_fingerprint
        self.views = dict(views or {})

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self.codes[name]
        except KeyError:
            raise KeyError(f"no shape code for object {name!r} in set {self.set_name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.codes

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    @property
    def names(self) -> list[str]:
        return list(self.codes)

    @property
    def code_dim(self) -> int:
        return len(next(iter(self.codes.values()))) if self.codes else 0

    def matrix(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Codes of ``names`` (default: all, in stored order) stacked into (len(names), code_dim) float32."""
        names = self.names if names is None else names
        if not names:
            return np.zeros((0, self.code_dim), np.float32)
        return np.stack([self[n] for n in names]).astype(np.float32)

    # ------------------------------------------------------------------ computing
    @classmethod
    def compute(
        cls,
        encoder: PointNetEncoder,
        points: Mapping[str, np.ndarray],
        set_name: str,
        num_points: int,
        num_yaws: int = ENCODE_YAWS,
    ) -> ShapeCodes:
        """Encode every cloud of ``points`` (name -> (N, 3), metres) with :meth:`PointNetEncoder.encode`."""
        codes = {name: encoder.encode(cloud, num_points, num_yaws) for name, cloud in points.items()}
        return cls(codes, set_name, encoder_checksum(encoder), data_fingerprint(points),
                   {"points": num_points, "yaws": num_yaws})  # fmt: skip

    @classmethod
    def load_or_compute(
        cls,
        out_dir: str | os.PathLike[str],
        set_name: str,
        objects: Sequence[ObjectSpec],
        points: Mapping[str, np.ndarray],
        config: EncoderTrainConfig = EncoderTrainConfig(),
        log: Callable[[str], None] | None = None,
    ) -> ShapeCodes:
        """Codes of every object in ``objects`` (all splits), reusing ``out_dir``'s files when they still match.

        The encoder is trained on the ``train`` split only (categories as labels) unless ``out_dir/encoder.pt``
        was trained with the same config on the same clouds; the codes are recomputed unless ``codes.json``
        was made by that very encoder from the same clouds.
        """
        out_dir = Path(out_dir)
        missing = [o.name for o in objects if o.name not in points]
        if missing:
            raise ValueError(f"no surface points for {len(missing)} objects of set {set_name!r}, e.g. {missing[:3]}")
        train = [o for o in objects if o.split == TRAIN_SPLIT]
        encoder, meta = load_or_train_encoder(
            out_dir / ENCODER_FILE,
            {o.name: points[o.name] for o in train},
            {o.name: o.category for o in train},
            config,
            log,
        )
        wanted_points = {o.name: points[o.name] for o in objects}
        views = {"points": config.num_points, "yaws": ENCODE_YAWS}
        path = out_dir / CODES_FILE
        if path.exists():
            try:
                saved = cls.load(path)
            except ValueError as err:
                saved = None
                if log:
                    log(f"recomputing codes: {err}")
            if (
                saved is not None
                and saved.set_name == set_name
                and saved.encoder_checksum == meta["checksum"]
                and saved.views == views
                and saved.points_fingerprint == data_fingerprint(wanted_points)
            ):
                if log:
                    log(f"reusing codes {path}")
                return saved
        codes = cls.compute(encoder, wanted_points, set_name, config.num_points)
        codes.save(path)
        if log:
            log(f"wrote {len(codes)} codes to {path}")
        return codes

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CODES_FORMAT,
            "set": self.set_name,
            "encoder_checksum": self.encoder_checksum,
            "points_fingerprint": self.points_fingerprint,
            "views": self.views,
            "code_dim": self.code_dim,
            # float() of a float32 is exact, and JSON writes the shortest repr that reads back to it
            "codes": {name: [float(v) for v in code] for name, code in self.codes.items()},
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write ``codes.json`` atomically."""
        atomic_write_json(Path(path), self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ShapeCodes:
        """Read a ``codes.json`` written by :meth:`save`."""
        try:
            data = read_json(path, "shape codes")
        except OSError as err:
            raise ValueError(f"{path}: unreadable shape codes ({err})") from err
        if not isinstance(data, dict) or data.get("format") != CODES_FORMAT:
            raise ValueError(f"{path}: not a shape-code file of format {CODES_FORMAT}")
        codes = {name: np.asarray(code, dtype=np.float32) for name, code in data["codes"].items()}
        return cls(codes, data["set"], data["encoder_checksum"], data.get("points_fingerprint", ""), data.get("views"))
