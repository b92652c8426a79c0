"""Looking at the data and at what the networks do with it: file and alpha-matte statistics, the
tensor shapes through a network, per-image scores to find the hardest pictures. The notebooks' helpers.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from .data import estimate_alpha
from .images import open_image
from .metrics import baseline_alpha, per_image_iou_mae, predict_alpha
from .paths import default_checkpoint_dir
from .viz import over_checkerboard


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
    """The matte (H, W) uint8 of a cut-out: its alpha channel, or estimated from the plain
    background when it was saved as RGB (as `data.load_pair` does)."""
    image = open_image(path, None)
    if image.mode == "RGBA":
        return np.asarray(image.getchannel("A"))
    return (estimate_alpha(np.asarray(image)) * 255 + 0.5).astype(np.uint8)


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


def plot_alpha_stats(stats: AlphaStats):
    """Three panels: the histogram of alpha values (log scale), and per image the share of
    object and the soft-edge fraction."""
    fig, (ax_hist, ax_fg, ax_soft) = plt.subplots(1, 3, figsize=(11, 3))
    ax_hist.bar(np.arange(256), stats.histogram, width=1.0, color="tab:blue")
    ax_hist.set(yscale="log", xlabel="alpha value (0 = background, 255 = object)", ylabel="pixels")
    ax_hist.set_title("alpha values, all pixels", fontsize=10)
    ax_fg.hist(stats.foreground, bins=20, range=(0, 1), color="tab:green")
    ax_fg.set(xlabel="share of the picture (alpha >= 0.5)", ylabel="images")
    ax_fg.set_title("how much of each picture is object", fontsize=10)
    ax_soft.hist(stats.soft, bins=20, color="tab:orange")
    ax_soft.set(xlabel="share of pixels with 0 < alpha < 1", ylabel="images")
    ax_soft.set_title("soft-edge fraction per image", fontsize=10)
    fig.tight_layout()
    return fig


def show_cutout(cutout: str | os.PathLike | Image.Image, background: tuple[float, float, float] = (0.1, 0.4, 0.9)):
    """An RGBA cut-out (a PNG's path, or a picture in memory) four ways: its colours, its alpha
    matte, over a checkerboard, and pasted on a plain `background` colour (RGB in [0, 1])."""
    image = cutout if isinstance(cutout, Image.Image) else open_image(cutout, "RGBA")
    rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    panels = {
        "colours (RGB)": rgb,
        "alpha matte": alpha[..., 0],
        "over a checkerboard": over_checkerboard(rgb, alpha[..., 0]),
        "over a new colour": rgb * alpha + np.asarray(background, np.float32) * (1 - alpha),
    }
    fig, axes = plt.subplots(1, 4, figsize=(11, 3))
    for ax, (title, picture) in zip(axes, panels.items()):
        ax.imshow(np.clip(picture, 0, 1), cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.tight_layout()
    return fig


def trace_shapes(model: torch.nn.Module, *inputs: torch.Tensor) -> list[tuple[str, str, tuple[int, ...]]]:
    """Run `model` on `inputs` and return (name, block type, output shape) of each of its parts,
    in the order they ran. The parts are the model's children, with the items of a ModuleList
    (`downs.0`, `downs.1`, ...) and of a Sequential that is the model's only child (`net.0`, ...)."""
    children = list(model.named_children())
    parts = []
    for name, child in children:
        if isinstance(child, torch.nn.ModuleList) or (isinstance(child, torch.nn.Sequential) and len(children) == 1):
            parts += [(f"{name}.{i}", item) for i, item in child.named_children()]
        else:
            parts.append((name, child))
    shapes: list[tuple[str, str, tuple[int, ...]]] = []

    def record(name: str):
        return lambda module, _inputs, out: shapes.append((name, type(module).__name__, tuple(out.shape)))

    hooks = [part.register_forward_hook(record(name)) for name, part in parts]
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


@dataclass
class Scores:
    """Per-image IoU and MAE of a matte over a data set, in the data set's order."""

    iou: np.ndarray
    mae: np.ndarray

    def worst(self, n: int = 4) -> list[int]:
        """Indices of the `n` images with the lowest IoU, worst first."""
        return [int(i) for i in np.argsort(self.iou, kind="stable")[:n]]


@torch.no_grad()
def per_image_scores(dataset, generator: torch.nn.Module | None = None, batch_size: int = 32) -> Scores:
    """IoU and MAE of each image of `dataset` for `generator`'s alpha, or for the colour-threshold
    baseline when `generator` is None."""
    device = next(generator.parameters()).device if generator is not None else torch.device("cpu")
    ious, maes = [], []
    for photo, target in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        photo = photo.to(device)
        alpha = predict_alpha(generator, photo) if generator is not None else baseline_alpha(photo)
        iou, mae = per_image_iou_mae(alpha.cpu(), target[:, 3:])
        ious += iou
        maes += mae
    return Scores(np.array(ious), np.array(maes))


def ensure_checkpoint(checkpoint_dir: str | os.PathLike | None = None, profile: str = "quick") -> Path:
    """`checkpoint_dir/best.pt` (default <project>/checkpoints/best.pt); when there is none yet,
    say so and first train the `profile` (quick: about a minute on a CPU) into that folder."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    if not (folder / "best.pt").is_file():
        from .train import train  # here: exploring data should not need the training code

        print(f"No checkpoint at {folder / 'best.pt'} yet: training the {profile!r} profile first (about a minute).")
        train(profile=profile, checkpoint_dir=str(folder))
    return folder / "best.pt"
