"""What a data set holds, read from its files: picture sizes, types and colour modes, and the
alpha statistics of its mattes (how much of each picture is object, how much soft edge).
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .masks import read_matte


def image_stats(paths: list[Path]) -> dict[str, Counter]:
    """How many files of each size (width x height), file type and colour mode, read from the
    file headers only (fast, even for large photos)."""
    stats = {"size": Counter(), "type": Counter(), "mode": Counter()}
    for path in paths:
        with Image.open(path) as image:
            stats["size"][f"{image.width}x{image.height}"] += 1
            stats["mode"][image.mode] += 1
        stats["type"][Path(path).suffix.lower()] += 1
    return stats


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """The matte (H, W) uint8 of the cut-out or mask at `path` (`masks.read_matte`), as training reads it."""
    return read_matte(path).alpha


@dataclass
class AlphaStats:
    """Alpha statistics of a set of cut-outs: `histogram` counts pixels of each alpha value
    0..255 over all images; per image, `foreground` is the share of pixels with alpha >= 128 and
    `soft` the share that is neither fully transparent (0) nor fully opaque (255)."""

    histogram: np.ndarray  # (256,) int64
    foreground: np.ndarray  # (N,) float
    soft: np.ndarray  # (N,) float

    def summary(self) -> str:
        total = self.histogram.sum()
        clear, opaque = self.histogram[0] / total, self.histogram[255] / total
        return (
            f"{len(self.soft)} mattes, {total:,} pixels: {clear:.1%} fully transparent, {opaque:.1%} fully opaque, "
            f"{1 - clear - opaque:.1%} soft. Per image: the object covers {np.median(self.foreground):.0%} "
            f"(median), soft edges {np.median(self.soft):.1%} (median, max {self.soft.max():.1%})."
        )


def alpha_stats(cutouts: list[Path], max_images: int | None = 300, seed: int = 0) -> AlphaStats:
    """`AlphaStats` of the cut-outs at their own resolution; at most `max_images` of them, drawn
    at random with `seed` when there are more (a large data set is summarised in seconds)."""
    cutouts = list(cutouts)
    if max_images is not None and len(cutouts) > max_images:
        picks = np.random.default_rng(seed).choice(len(cutouts), max_images, replace=False)
        cutouts = [cutouts[i] for i in sorted(picks)]
    histogram = np.zeros(256, dtype=np.int64)
    foreground, soft = [], []
    for path in cutouts:
        alpha = read_alpha(path)
        histogram += np.bincount(alpha.ravel(), minlength=256)
        foreground.append(float((alpha >= 128).mean()))
        soft.append(float(((alpha > 0) & (alpha < 255)).mean()))
    return AlphaStats(histogram, np.array(foreground), np.array(soft))


def source_of(path: str | os.PathLike) -> str:
    """The source of one of the course's real pictures: its file stem's prefix ("portrait_00002":
    "portrait"; "davis_cows_00012": "davis"), or "sample" for the drawn sample's."""
    return Path(path).stem.split("_")[0]


def by_source(pairs: list[tuple[Path, Path]]) -> dict[str, list[tuple[Path, Path]]]:
    """The pairs grouped by `source_of` their photo, each group in its order."""
    groups: dict[str, list[tuple[Path, Path]]] = {}
    for pair in pairs:
        groups.setdefault(source_of(pair[0]), []).append(pair)
    return groups


def source_table(pairs: list[tuple[Path, Path]], max_images: int = 100) -> str:
    """One line a source: how many pairs, the most common photo size, and from at most `max_images`
    of its masks the object's share of a picture and the soft edge's (medians)."""
    lines = [f"{'source':10} {'pairs':>6}  {'most common size':18} {'object':>7} {'soft edge':>10}"]
    for source, found in sorted(by_source(pairs).items()):
        size, _ = image_stats([photo for photo, _ in found])["size"].most_common(1)[0]
        stats = alpha_stats([mask for _, mask in found], max_images=max_images)
        share, soft = np.median(stats.foreground), np.median(stats.soft)
        lines.append(f"{source:10} {len(found):6,}  {size:18} {share:7.0%} {soft:10.1%}")
    return "\n".join(lines)
