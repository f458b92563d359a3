"""The report's figures: learning curves with a seed band, success per category, mixing weights per category, D
per k, and GIFs of a success and a failure per split. Small PNGs (``DPI``), each made only from files that exist;
a figure with nothing to draw is listed as missing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from envs.objects.spec import SPLITS
from resdex_sb3.ablations import GRID_DIR
from resdex_sb3.curves import AXES, read_scalar, training_seconds
from resdex_sb3.run_folder import checkpoint_steps, continuation_steps

DPI = 72
CURVE_TAG = "eval/sustained_train"
GRID_POINTS = 60


class Figures:
    """Draws every figure of one runs folder into ``out``.

    :param folder: the report's ``RunsFolder``.
    :param out: the report folder.
    """

    def __init__(self, folder: Any, out: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        self.folder, self.out = folder, out
        self.made: list[tuple[str, Path | None]] = []

    def markdown(self) -> list[str]:
        """Draw everything; the report's figure section."""
        self._curves("steps")
        self._curves("wall")
        self._by_category()
        self._weights()
        self._distance()
        lines = ["## Figures", ""]
        for title, path in self.made:
            lines += [f"### {title}", "", f"![{title}]({path.name})" if path else "missing (no runs with data yet)", ""]
        return lines + self._gifs()

    def _save(self, fig: Any, name: str, title: str) -> None:
        import matplotlib.pyplot as plt

        path = self.out / name
        fig.tight_layout()
        fig.savefig(path, dpi=DPI)
        plt.close(fig)
        self.made.append((title, path))

    # ------------------------------------------------------------------ curves
    def _seed_curve(self, variant: str, seed_runs: tuple[Path, Path], x: str) -> tuple[np.ndarray, np.ndarray]:
        """Stage 1 then stage 2 of one seed on one axis, both counting what was trained: stage 2 logs env steps on
        from the checkpoint it started from (stage 1's best, often before stage 1's end), so its steps and its
        wall time are put after the whole of stage 1's."""
        first, second = seed_runs
        xs1, ys1 = read_scalar(first, CURVE_TAG, x)
        xs2, ys2 = read_scalar(second, CURVE_TAG, x)
        if x == "wall":
            xs2 = [v + training_seconds(first) / 3600.0 for v in xs2]
        else:
            skipped = checkpoint_steps(first) - continuation_steps(first)
            xs2 = [v + skipped for v in xs2]
        return np.array(xs1 + xs2, dtype=float), np.array(ys1 + ys2, dtype=float)

    def _curves(self, x: str) -> None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        drawn = 0
        for name, variant in self.folder.variants.items():
            pairs = zip(self.folder.run_folders(name, "stage1"), self.folder.run_folders(name, "stage2"))
            curves = [c for c in (self._seed_curve(name, pair, x) for pair in pairs) if len(c[0]) > 1]
            if not curves:
                continue
            grid = np.linspace(max(c[0].min() for c in curves), min(c[0].max() for c in curves), GRID_POINTS)
            ys = np.array([np.interp(grid, cx, cy) for cx, cy in curves])
            line = ax.plot(grid, ys.mean(axis=0), label=f"{variant['label']} ({len(curves)} seeds)")[0]
            ax.fill_between(grid, ys.min(axis=0), ys.max(axis=0), alpha=0.2, color=line.get_color())
            drawn += 1
        title = (f"Sustained success on train (periodic evaluation) against {AXES[x]}, seed mean and range; the "
                 "hyper-policies' own stage 1 and 2 (their bases' training is not on the axis)")
        if not drawn:
            plt.close(fig)
            self.made.append((title, None))
            return
        ax.set_xlabel(AXES[x])
        ax.set_ylabel("sustained success, train")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        self._save(fig, f"curves_{x}.png", title)

    # ------------------------------------------------------------------ per category
    def _by_category(self) -> None:
        import matplotlib.pyplot as plt

        policies = [(v, self.folder.variants[v]["label"]) for v in (self.folder.method(), self.folder.baseline()) if v]
        title = "Sustained success per category after stage 2 (seed-averaged; method and baseline)"
        fig, axes = plt.subplots(1, len(SPLITS), figsize=(11, 3.6))
        drawn = 0
        for ax, split in zip(axes, SPLITS):
            width = 0.8 / max(1, len(policies))
            for i, (variant, label) in enumerate(policies):
                agg = self.folder.aggregate(variant, "stage2", split)
                rates, categories = agg.per_object("sustained"), agg.categories()
                if not rates or not categories:
                    continue
                names = sorted({categories[o] for o in rates if o in categories})
                means = [np.mean([r for o, r in rates.items() if categories.get(o) == c]) for c in names]
                ax.bar(np.arange(len(names)) + i * width, means, width, label=label)
                ax.set_xticks(np.arange(len(names)) + width * (len(policies) - 1) / 2, names, rotation=70, fontsize=6)
                drawn += 1
            ax.set_title(split, fontsize=9)
            ax.set_ylim(0, 1)
        if not drawn:
            plt.close(fig)
            self.made.append((title, None))
            return
        axes[0].set_ylabel("sustained success")
        axes[0].legend(fontsize=6)
        self._save(fig, "success_by_category.png", title)

    def _weights(self) -> None:
        import matplotlib.pyplot as plt

        method = self.folder.method()
        title = "Mean mixing weight of each base per category (the method, stage 2, seed-averaged)"
        rows: dict[str, list[np.ndarray]] = {}
        for split in SPLITS:
            if method is None:
                break
            agg = self.folder.aggregate(method, "stage2", split)
            categories = agg.categories()
            for obj, weights in agg.weights().items():
                label = f"{categories.get(obj, '?')} ({split.replace('unseen_', 'u.')})"
                rows.setdefault(label, []).append(weights)
        if not rows:
            self.made.append((title, None))
            return
        labels = sorted(rows)
        matrix = np.array([np.mean(rows[label], axis=0) for label in labels])
        fig, ax = plt.subplots(figsize=(1.2 + 0.6 * matrix.shape[1], 0.8 + 0.18 * len(labels)))
        image = ax.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        named = self.folder.plan.get("bases") or []  # the pipeline's bases; a variant may mix others
        bases = [named[i] if i < len(named) else f"base {i}" for i in range(matrix.shape[1])]
        ax.set_xticks(range(matrix.shape[1]), bases, rotation=45, fontsize=7)
        fig.colorbar(image, ax=ax, fraction=0.05)
        self._save(fig, "weights_by_category.png", title)

    def _distance(self) -> None:
        import matplotlib.pyplot as plt

        title = "Grasp-pose distance D per k (unseen categories, stage 2; seed mean and range)"
        ks, means, lows, highs = [], [], [], []
        for variant in self.folder.k_variants():
            values = self.folder.aggregate(variant, "stage2", "unseen_cat").seed_values("grasp_distance")
            if values:
                ks.append(self.folder.k_text(variant))
                means.append(np.mean(values))
                lows.append(np.mean(values) - min(values))
                highs.append(max(values) - np.mean(values))
        if not ks:
            self.made.append((title, None))
            return
        fig, ax = plt.subplots(figsize=(4, 3))
        ax.bar(ks, means, yerr=[lows, highs], capsize=4)
        ax.set_xlabel("k (bases)")
        ax.set_ylabel("D (lower: closer to proposals)")
        self._save(fig, "distance_by_k.png", title)

    # ------------------------------------------------------------------ GIFs
    def _gifs(self) -> list[str]:
        """A success and a failure per split of the method's first seed (written by the grid's evaluation)."""
        method = self.folder.method()
        lines = ["### A success and a failure per split (the method, stage 2, first seed)", "",
                 "| split | success | failure |", "|---|---|---|"]  # fmt: skip
        for split in SPLITS:
            cells = []
            source = self.folder.root / GRID_DIR / "gifs" / f"{method}-stage2-seed{self.folder.seeds[0]}-{split}"
            info = json.loads((source / "gifs.json").read_text()) if (source / "gifs.json").is_file() else {}
            for outcome in ("success", "failure"):
                target = self.out / "gifs" / f"{split}-{outcome}.gif"
                if method and copy_small(source / f"{outcome}.gif", target):
                    about = info.get(outcome) or {}
                    caption = about.get("object", "") if isinstance(about, dict) else ""
                    cells.append(f"![{outcome}](gifs/{target.name}) {caption}")
                else:
                    cells.append("missing")
            lines.append(f"| {split} | " + " | ".join(cells) + " |")
        return lines + [""]


def copy_small(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` when it exists (GIFs into the report folder)."""
    if not source.is_file():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return True
