"""`check_data`, the first thing to run on a folder of pairs: the report of `data.check.inspect_data`
printed, and a few pairs drawn with their mattes over the photo, to see that each mask lies on its
object before a model spends minutes learning from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image

from ..data.check import DataReport, inspect_data
from ..data.images import open_image, save_png_atomic
from ..data.masks import read_matte

SHOWN_SIDE = 320  # photos are drawn at most this many pixels on a side: the figure stays small


def matte_over_photo(photo: str | os.PathLike, mask: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The photo (H, W, 3) in [0, 1] with its background dimmed and tinted blue where the matte says
    background, and the matte (H, W) in [0, 1] at the photo's size, both at most `SHOWN_SIDE`."""
    image = open_image(photo, "RGB")
    image.thumbnail((SHOWN_SIDE, SHOWN_SIDE))
    matte = Image.fromarray(read_matte(mask).alpha).resize(image.size, Image.BILINEAR)
    rgb, alpha = np.asarray(image, np.float32) / 255, np.asarray(matte, np.float32)[..., None] / 255
    background = 0.3 * rgb + np.array([0.0, 0.1, 0.35], np.float32)
    return rgb * alpha + background * (1 - alpha), alpha[..., 0]


def show_mattes(pairs: list[tuple[Path, Path]], titles: list[str] | None = None, columns: int = 3):
    """Each pair's photo with its matte over it (`matte_over_photo`): the object as it is, the
    background dimmed blue, the matte's outline (alpha 0.5) in yellow. A mask that is shifted,
    rotated, inverted or of another object shows at a glance."""
    columns = max(1, min(columns, len(pairs)))
    rows = max(1, -(-len(pairs) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.3 * columns, 3.3 * rows), squeeze=False)
    for ax, (photo, mask), title in zip(axes.flat, pairs, titles or [p.stem for p, _ in pairs]):
        shown, alpha = matte_over_photo(photo, mask)
        ax.imshow(shown)
        ax.contour(alpha, levels=[0.5], colors="yellow", linewidths=1)
        ax.set_title(title, fontsize=8)
    if not pairs:
        axes[0, 0].text(0.5, 0.5, "no pair to show", ha="center", va="center")
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def _picks(report: DataReport, n_images: int, seed: int) -> list[tuple[Path, Path]]:
    """`n_images` usable pairs: one of each kind of mask first, then others drawn with `seed`."""
    usable, by_kind = report.usable, {}
    for pair in usable:
        by_kind.setdefault(report.reads[pair].kind, pair)
    first = list(by_kind.values())[:n_images]
    rest = [pair for pair in usable if pair not in first]
    order = np.random.default_rng(seed).permutation(len(rest))
    return first + [rest[i] for i in order[: n_images - len(first)]]


def check_data(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    n_images: int = 6,
    seed: int = 0,
    figure_path: str | os.PathLike | None = None,
):
    """Print what the folder of pairs under `data_root` holds (`inspect_data`: folders, pairs and
    by which rule, what is left out and why, mask kinds and values, sizes, object share, split),
    and return a figure of `n_images` of its pairs with their mattes over the photo (another
    `seed`: other pairs), also saved as a PNG at `figure_path` if given. Run it on your own folder
    before training on it."""
    report = inspect_data(data_root, bg_path, no_bg_path)
    print(report)
    pairs = _picks(report, n_images, seed)
    fig = show_mattes(pairs, [f"{photo.stem}\n{report.reads[(photo, mask)].kind}" for photo, mask in pairs])
    if figure_path is not None:
        fig.canvas.draw()
        save_png_atomic(Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB"), figure_path)
    return fig
