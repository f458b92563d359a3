"""Shape encoder, codes and K-means clusters on the ``small`` embedded preset (30 training objects).

The objects come straight from ``embedded_objects`` + ``sample_surface``: no data directory, no proposals.
Few epochs keep the whole file fast; the checks only need codes that are deterministic and roughly shaped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from envs.objects.embedded import embedded_objects
from envs.objects.spec import ConvexPart, ObjectSpec
from envs.objects.surface import sample_surface
from resdex_sb3.shape.clusters import CLUSTERS_FILE, cluster_codes, run_clustering, write_clusters
from resdex_sb3.shape import ENCODER_FILE, EncoderTrainConfig, PointNetEncoder, ShapeCodes, load_encoder
from resdex_sb3.shape.pointnet import yaw_matrix

SET_NAME = "embedded-small"
CONFIG = EncoderTrainConfig(epochs=25)


@pytest.fixture(scope="module")
def small_set() -> tuple[list[ObjectSpec], dict[str, np.ndarray]]:
    objects = embedded_objects("small")
    points = {o.name: sample_surface(o, seed=i) for i, o in enumerate(objects)}
    return objects, points


@pytest.fixture(scope="module")
def clustered(small_set, tmp_path_factory) -> tuple[Path, dict, ShapeCodes]:
    """One training run shared by the tests: out dir, clusters.json data, codes."""
    objects, points = small_set
    out = tmp_path_factory.mktemp("shape")
    result, _ = write_clusters(out, SET_NAME, objects, points, k=4, seed=0, config=CONFIG)
    return out, result, ShapeCodes.load(out / "codes.json")


def test_encoder_output_shape():
    encoder = PointNetEncoder()
    assert encoder(torch.zeros(3, 100, 3)).shape == (3, 64)
    code = encoder.encode(np.random.default_rng(0).normal(size=(4096, 3)).astype(np.float32) * 0.05)
    assert code.shape == (64,) and code.dtype == np.float32
    # fewer points than a view needs still works (points are repeated)
    assert encoder.encode(np.zeros((10, 3), np.float32)).shape == (64,)
    with pytest.raises(ValueError, match="B, N, 3"):
        encoder(torch.zeros(100, 3))


def test_codes_cover_every_split(small_set, clustered):
    objects, _ = small_set
    out, result, codes = clustered
    assert len(codes) == len(objects) == 55 and codes.set_name == SET_NAME
    assert codes.matrix().shape == (55, 64) and np.isfinite(codes.matrix()).all()
    # the encoder saw the 30 training objects only, yet every unseen object has a code
    _, _, meta = load_encoder(out / ENCODER_FILE)
    assert meta["training"]["train_objects"] == 30
    unseen = [o.name for o in objects if o.split != "train"]
    assert len(unseen) == 25 and all(name in codes for name in unseen)
    assert result["train_objects"] == 30 and sum(c["size"] for c in result["clusters"]) == 30


def test_same_seed_same_codes_and_clusters(small_set, clustered, tmp_path):
    objects, points = small_set
    out, result, codes = clustered
    again, path = write_clusters(tmp_path, SET_NAME, objects, points, k=4, seed=0, config=CONFIG)
    assert path.read_bytes() == (out / CLUSTERS_FILE).read_bytes()
    assert again == result
    np.testing.assert_array_equal(ShapeCodes.load(tmp_path / "codes.json").matrix(), codes.matrix())


def test_outputs_are_reused(small_set, clustered):
    objects, points = small_set
    out, result, _ = clustered
    messages: list[str] = []
    again, _ = write_clusters(out, SET_NAME, objects, points, k=4, seed=0, config=CONFIG, log=messages.append)
    assert any(m.startswith("reusing encoder") for m in messages)
    assert any(m.startswith("reusing codes") for m in messages)
    assert again == result


def test_kmeans_deterministic_and_sorted(small_set, clustered):
    objects, _ = small_set
    _, _, codes = clustered
    first, second = cluster_codes(codes, objects, k=3, seed=0), cluster_codes(codes, objects, k=3, seed=0)
    assert first == second
    for cluster in first["clusters"]:
        distances = [m["distance"] for m in cluster["members"]]
        assert distances == sorted(distances)
        assert cluster["representative"] == cluster["members"][0]["name"]
        assert cluster["size"] == len(cluster["members"])


def test_k_out_of_range_is_a_clear_error(small_set, clustered, tmp_path):
    objects, points = small_set
    _, _, codes = clustered
    with pytest.raises(ValueError, match=r"--k 31 .*30, the number of training objects"):
        cluster_codes(codes, objects, k=31)
    with pytest.raises(ValueError, match=r"--k 0 "):
        write_clusters(tmp_path, SET_NAME, objects, points, k=0)
    assert not (tmp_path / ENCODER_FILE).exists()  # rejected before training


def test_unknown_set_lists_known_sets(tmp_path):
    with pytest.raises(ValueError, match=r"unknown object set 'nope'.*embedded-small"):
        run_clustering(4, "nope", data_dir=tmp_path, out_dir=tmp_path / "out", log=None)


def test_codes_separate_shapes_more_than_rotations(small_set, clustered):
    _, points = small_set
    out, _, codes = clustered
    encoder, config, _ = load_encoder(out / ENCODER_FILE)
    bottle = points["bottle-000"]
    rotated = encoder.encode(bottle @ yaw_matrix(1.0).T, config.num_points)
    same_object = np.linalg.norm(rotated - codes["bottle-000"])
    different = np.linalg.norm(codes["plate-000"] - codes["bottle-000"])
    assert different > 3 * same_object


def test_code_of_an_object_outside_the_set(clustered):
    out, _, codes = clustered
    encoder, config, _ = load_encoder(out / ENCODER_FILE)
    brick = ObjectSpec("brick", (ConvexPart("box", (0.05, 0.03, 0.02)),), "brick", "unseen_cat")
    code = encoder.encode(sample_surface(brick, seed=0), config.num_points)
    assert code.shape == (64,) and np.isfinite(code).all()
    # the code reflects size: a brick scaled up 2x gets a different code
    big = ObjectSpec("big_brick", (ConvexPart("box", (0.10, 0.06, 0.04)),), "brick", "unseen_cat")
    assert not np.allclose(encoder.encode(sample_surface(big, seed=0), config.num_points), code)
