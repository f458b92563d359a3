"""``python -m resdex_sb3.cluster --k 4``: group the training objects by shape, one base policy per group.

ResDex trains K geometry-unaware base policies, each on one object: K-means (sklearn, ``random_state=0``)
on the 64-d shape codes of the training objects, then per cluster the member nearest the centre (the next
nearest if its policy fails). This command does the same with our own encoder (the reference's is not
released): it trains the encoder (or reuses a matching one), encodes every object of the set, clusters the
training split, and writes into the output folder (default ``runs/shape/<set>/``)::

    encoder.pt      the shape encoder (see resdex_sb3/shape/train_encoder.py)
    codes.json      object name -> 64-d code, for every split
    clusters.json   per cluster: index, size, centre, members sorted by distance to the centre, representative

``clusters.json`` names the other two files relative to its own folder, so the folder can be moved, and
runs with the same inputs give byte-identical files. Another ``--k`` overwrites it: use one ``--out`` per K
to keep several.

Examples::

    python -m resdex_sb3.cluster --k 4
    python -m resdex_sb3.cluster --k 8 --set embedded-large --out runs/shape/large-k8
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from envs.objects.catalog import DEFAULT_SET
from resdex_sb3.errors import cli_main
from resdex_sb3.shape.clusters import format_table, run_clustering
from resdex_sb3.shape.train_encoder import EncoderTrainConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m resdex_sb3.cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--k", type=int, required=True, help="number of clusters (= base policies)")
    parser.add_argument("--set", default=DEFAULT_SET, help=f"object set (default: {DEFAULT_SET})")
    parser.add_argument("--data-dir", default=None, help="data directory (default: $RESDEX_DATA, else ./data)")
    parser.add_argument("--out", default=None, help="output folder (default: runs/shape/<set>/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the encoder training and of K-means")
    parser.add_argument("--epochs", type=int, default=EncoderTrainConfig.epochs, help="encoder training epochs")
    return parser


@cli_main
def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    result, path = run_clustering(args.k, args.set, args.data_dir, args.out, args.seed,
                                  EncoderTrainConfig(epochs=args.epochs))  # fmt: skip
    print(format_table(result))
    print(f"{result['train_objects']} training objects, k={result['k']}, inertia {result['inertia']:.3f}")
    print(f"clusters: {path}\ncodes:    {path.parent / result['codes']}\nencoder:  {path.parent / result['encoder']}")
    print(f"took {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
