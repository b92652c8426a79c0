"""Figures for the course: pairs with their mattes, predictions beside the truth over a
checkerboard, and the training curves. Each function returns its matplotlib figure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from ..data.images import open_image
from ..data.photos import PHOTOS, load_photos
from ..data.stats import AlphaStats
from ..evaluation.metrics import (
    baseline_alpha,
    gradient_error,
    hole_count,
    hole_error,
    per_image_iou_mae,
    predict_alpha,
    sad_error,
)
from ..export.inference import cut_out, get_generator
from ..settings import EVAL_BATCH


def checkerboard(height: int, width: int, square: int = 8) -> np.ndarray:
    """A light grey checkerboard (H, W, 3) in [0, 1]: how image editors show transparency."""
    yy, xx = np.mgrid[0:height, 0:width]
    light = ((yy // square + xx // square) % 2).astype(np.float32)
    return np.repeat((0.75 + 0.2 * light)[..., None], 3, axis=-1)


def over_checkerboard(rgb: np.ndarray | torch.Tensor, alpha: np.ndarray | torch.Tensor) -> np.ndarray:
    """RGB (3, H, W) or (H, W, 3) with alpha (H, W) composited over a checkerboard, (H, W, 3)."""
    rgb, alpha = _hwc(rgb), np.asarray(alpha, dtype=np.float32).squeeze()
    square = max(2, rgb.shape[0] // 16)
    return rgb * alpha[..., None] + checkerboard(*rgb.shape[:2], square) * (1 - alpha[..., None])


def _hwc(image: np.ndarray | torch.Tensor) -> np.ndarray:
    array = image.detach().float().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image, np.float32)
    return array.transpose(1, 2, 0) if array.ndim == 3 and array.shape[0] in (3, 4) else array


def _collect(dataset, n_images: int, seed: int | None) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """`n_images` (photo, target) items drawn at random from a data set, stacked; all of them, in
    their order, when it has no more (a chosen few, such as the worst, stay in the order chosen);
    and each photo's height / width as it was taken (`_aspect`)."""
    rng = np.random.default_rng(seed)
    if n_images >= len(dataset):
        picks = np.arange(len(dataset))
    else:
        picks = rng.choice(len(dataset), size=n_images, replace=False)
    items = [dataset[int(i)] for i in picks]
    aspects = [_aspect(dataset, int(i)) for i in picks]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items]), aspects


def _rows(aspects: list[float], columns: int):
    """A figure of one row of `columns` panels a picture, each row as tall as its photo's shape asks."""
    heights = [2.5 * aspect for aspect in aspects]
    size = (2.5 * columns, sum(heights) + 0.35 * len(aspects))  # a title's room above each row
    return plt.subplots(len(aspects), columns, figsize=size, squeeze=False, gridspec_kw={"height_ratios": heights})


def _aspect(dataset, index: int) -> float:
    """The height / width of an item's photo file (read from its header): the networks see every
    picture squashed into a square, and a figure draws it back at the photo's own shape. 1 for
    items that are not files (a batch drawn in memory)."""
    if isinstance(dataset, Subset):  # a chosen few of a data set: the item it stands for
        return _aspect(dataset.dataset, int(dataset.indices[index]))
    pairs = getattr(dataset, "pairs", None)
    if not pairs:
        return 1.0
    with Image.open(pairs[index][0]) as photo:
        return photo.height / photo.width


def predict_and_compare(test_loader, n_images: int = 5, generator=None, seed: int | None = None, device=None):
    """Rows of photo | prediction | ground truth for `n_images` random test images, cut-outs over
    a checkerboard, each prediction titled with its IoU and MAE. Rerun it for other images
    (or pass `seed` for the same ones). `generator`: a GModel or checkpoint path (default: the
    course's best checkpoint)."""
    model = get_generator(generator, device)
    photo, target, aspects = _collect(test_loader.dataset, n_images, seed)
    alpha = predict_alpha(model, photo.to(next(model.parameters()).device)).cpu()
    ious, maes = per_image_iou_mae(alpha, target[:, 3:])
    fig, axes = _rows(aspects, 3)
    for row, (x, y, a, iou, mae, aspect) in enumerate(zip(photo, target, alpha, ious, maes, aspects)):
        panels = [
            (_hwc(x), "input"),
            (over_checkerboard(x, a), f"prediction  IoU {iou:.2f}  MAE {mae:.3f}"),
            (over_checkerboard(y[:3], y[3]), "ground truth"),
        ]
        for ax, (image, title) in zip(axes[row], panels):
            ax.imshow(np.clip(image, 0, 1), aspect=aspect)  # the photo's own shape, not the model's square
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


def show_pairs(dataset, n_images: int = 4, seed: int | None = 0, baseline: bool = False):
    """Photo | cut-out over a checkerboard | alpha matte (| the colour-threshold baseline's matte)
    for a few items of a PairedImageDataset."""
    photo, target, aspects = _collect(dataset, n_images, seed)
    columns = 4 if baseline else 3
    fig, axes = _rows(aspects, columns)
    guesses = baseline_alpha(photo) if baseline else None
    for row, (x, y, aspect) in enumerate(zip(photo, target, aspects)):
        panels = [(_hwc(x), "photo"), (over_checkerboard(y[:3], y[3]), "cut-out"), (y[3].numpy(), "alpha matte")]
        if baseline:
            iou = per_image_iou_mae(guesses[row : row + 1], y[None, 3:])[0][0]
            panels.append((guesses[row, 0].numpy(), f"colour threshold, IoU {iou:.2f}"))
        for ax, (image, title) in zip(axes[row], panels):
            ax.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, aspect=aspect)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


RECONSTRUCTION = ("alpha_l1", "alpha_bce", "colour_l1", "alpha_iou")  # G's loss terms that rec_weight multiplies


def plot_history(history: list[dict] | str | os.PathLike):
    """Four panels per epoch, from `train`'s history or its history.json: the reconstruction loss on
    the training batches beside the same on the validation split (a gap that grows is overfitting);
    each reconstruction term; the GAN's game, D's loss and its mean scores of real and of G's
    cut-outs, beside log 2 = 0.69 (the loss of a D that cannot tell them apart), or a note when
    there was no D (`adv_weight` 0); and the validation IoU and MAE."""
    if not isinstance(history, list):
        history = json.loads(Path(history).read_text())
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(2, 2, figsize=(11, 6.4))
    ax_fit, ax_loss, ax_game, ax_val = axes.flat
    terms = [key for key in RECONSTRUCTION if key in history[0]]  # a history from before a term has no column
    ax_fit.plot(epochs, [sum(row[key] for key in terms) for row in history], label="training batches")
    if "val_loss" in history[0]:  # histories written before it was recorded have no validation loss
        ax_fit.plot(epochs, [row["val_loss"] for row in history], label="validation split")
    ax_fit.set(xlabel="epoch", ylabel="loss", title="reconstruction loss: training and validation")
    ax_fit.legend(fontsize=8)
    labels = {"alpha_l1": "alpha L1", "alpha_bce": "alpha BCE", "colour_l1": "colour L1", "alpha_iou": "1 - soft IoU"}
    for key in terms:
        ax_loss.plot(epochs, [row[key] for row in history], label=labels[key])
    ax_loss.set(xlabel="epoch", ylabel="loss", title="its terms (training)", yscale="log")
    ax_loss.legend(fontsize=8)
    for key, label, style in (
        ("loss_d", "D loss", "-"),
        ("g_adv", "G adversarial", "-"),
        ("d_real", "D's score, real", "--"),
        ("d_fake", "D's score, G's", "--"),
    ):
        if any(key in row for row in history):  # epochs without D (resumed with another adv_weight) leave a gap
            ax_game.plot(epochs, [row.get(key, np.nan) for row in history], style, label=label)
    ax_game.set(xlabel="epoch", title="the game: D against G")
    if any("loss_d" in row for row in history):
        ax_game.axhline(np.log(2), color="grey", lw=0.8, ls=":", label="log 2: D cannot tell")
        ax_game.legend(fontsize=8)
    else:
        ax_game.text(0.5, 0.5, "no D: G trained alone\n(adv_weight 0)", ha="center", va="center")
    ax_val.plot(epochs, [row["val_iou"] for row in history], label="IoU", color="tab:green")
    ax_val.plot(epochs, [row["val_mae"] for row in history], label="MAE", color="tab:red")
    ax_val.set(xlabel="epoch", title="validation metrics", ylim=(0, 1))
    ax_val.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_patch_windows(picture: torch.Tensor, d: torch.nn.Module, verdicts=((0, 0), (3, 3))):
    """The picture (3, H, W) with the input window of each of D's `verdicts` ((row, column) in its
    map of patch logits) drawn over it: where a window reaches past the picture, D sees padding
    there; a pixel outside a verdict's window does not change that verdict at all."""
    from matplotlib.patches import Rectangle

    from ..models.inspect import patch_window

    size = picture.shape[-1]
    fig, ax = plt.subplots(figsize=(4.6, 4.6))
    ax.imshow(_hwc(picture), extent=(-0.5, size - 0.5, size - 0.5, -0.5))
    low, high = -0.5, size - 0.5
    step = patch_window(d, 1)[0] - patch_window(d, 0)[0]
    for (row, col), colour in zip(verdicts, ("tab:red", "tab:cyan", "tab:orange", "tab:green")):
        (top, bottom), (left, right) = patch_window(d, row), patch_window(d, col)
        label = f"verdict ({row}, {col}): pixels {left}..{right} x {top}..{bottom}"
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5), right - left + 1, bottom - top + 1, fill=False, lw=2, ec=colour, label=label
            )
        )
        ax.add_patch(Rectangle((col * step - 0.5, row * step - 0.5), step, step, color=colour, alpha=0.6))
        low, high = min(low, left - 0.5, top - 0.5), max(high, right + 0.5, bottom + 0.5)
    ax.add_patch(Rectangle((-0.5, -0.5), size, size, fill=False, lw=1, ec="black", ls="--"))
    ax.set(xlim=(low - 2, high + 2), ylim=(high + 2, low - 2), facecolor="lightgrey")
    ax.set_title(f"{size} x {size} picture (dashed); grey: padding", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.04))
    return fig


def show_failures(dataset, indices: list[int], generator, titles: list[str] | None = None):
    """For each picture of `indices`: the photo, the predicted cut-out over a checkerboard, the
    predicted matte, the true matte, and the error map (red: background kept as object, a leak;
    blue: object lost, a missing part), so that what goes wrong is seen, not guessed."""
    photo = torch.stack([dataset[i][0] for i in indices])
    target = torch.stack([dataset[i][1] for i in indices])
    model = get_generator(generator)
    alpha = predict_alpha(model, photo.to(next(model.parameters()).device)).cpu()
    fig, axes = plt.subplots(len(indices), 5, figsize=(11, 2.3 * len(indices)), squeeze=False)
    for row, (x, y, a) in enumerate(zip(photo, target, alpha)):
        error = (a[0] - y[3]).numpy()  # > 0: a leak, < 0: a missing part
        panels = [
            (_hwc(x), titles[row] if titles else "photo", None),
            (over_checkerboard(x, a), "prediction", None),
            (a[0].numpy(), "predicted matte", "gray"),
            (y[3].numpy(), "true matte", "gray"),
            (error, "error: red leak, blue missing", "bwr"),
        ]
        for ax, (image, title, cmap) in zip(axes[row], panels):
            limits = (-1, 1) if cmap == "bwr" else (0, 1)
            ax.imshow(image if cmap else np.clip(image, 0, 1), cmap=cmap, vmin=limits[0], vmax=limits[1])
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


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


def show_photos(split: str = "train", columns: int = 6):
    """The real photographs of `split` ("train" or "new_photos") that the sample is made of, each
    titled with its name, as scikit-image or matplotlib ships it."""
    names = [name for name, (_, use, _) in PHOTOS.items() if use == split]
    rows = -(-len(names) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.8 * columns, 1.8 * rows), squeeze=False)
    for ax, name, photo in zip(axes.flat, names, load_photos(split)):
        ax.imshow(photo)
        ax.set_title(name.removesuffix(".jpg"), fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def compare_mattes(dataset, generators: dict, indices: list[int]):
    """Edges side by side: for each picture of `indices`, the photo, the true matte, then each of
    `generators`' mattes ({"GAN": g, "without the GAN": g0}) with its per-picture SAD and gradient
    error in the title, so that what one training gets right at the edges and the other not shows."""
    photo = torch.stack([dataset[i][0] for i in indices])
    true = torch.stack([dataset[i][1][3:] for i in indices])
    models = {name: get_generator(g) for name, g in generators.items()}
    mattes = {name: predict_alpha(g, photo.to(next(g.parameters()).device)).cpu() for name, g in models.items()}
    columns = 2 + len(mattes)
    fig, axes = plt.subplots(len(indices), columns, figsize=(2.2 * columns, 2.3 * len(indices)), squeeze=False)
    for row in range(len(indices)):
        panels = [(_hwc(photo[row]), "photo"), (true[row, 0].numpy(), "true matte")]
        for name, alpha in mattes.items():
            sad = sad_error(alpha[row : row + 1], true[row : row + 1]).item()
            grad = gradient_error(alpha[row : row + 1], true[row : row + 1]).item()
            panels.append((alpha[row, 0].numpy(), f"{name}\nSAD {sad:.0f}  Grad {grad:.1f}"))
        for ax, (image, title) in zip(axes[row], panels):
            ax.imshow(image, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def compare_exports(image: Image.Image, generator, box: tuple[int, int, int, int] | None = None):
    """The plain export (the network's matte upsampled bilinearly, the photo's colours) above the
    refined one (the matte guided by the photo, the soft pixels' colours un-blended): matte, cut-out
    over a checkerboard and over a new colour, within `box` (left, top, right, bottom) of the picture."""
    rows = {"plain": cut_out(image, generator, refine=False), "refined": cut_out(image, generator)}
    fig, axes = plt.subplots(2, 3, figsize=(9, 6.2))
    for row, (name, rgba) in zip(axes, rows.items()):
        array = np.asarray(rgba.crop(box) if box else rgba, dtype=np.float32) / 255
        rgb, alpha = array[..., :3], array[..., 3]
        panels = [(alpha, f"{name}: matte"), (over_checkerboard(rgb, alpha), "over a checkerboard")]
        panels.append(
            (rgb * alpha[..., None] + np.array([0.1, 0.4, 0.9]) * (1 - alpha[..., None]), "over a new colour")
        )
        for ax, (picture, title) in zip(row, panels):
            ax.imshow(np.clip(picture, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


def explain_iou_and_holes(size: int = 96):
    """Two of the course's measures, drawn: IoU, the overlap of a predicted object with the true
    one over their union (green: both; red: predicted only; blue: true only), and Holes, a region
    of background wholly inside a predicted object, which the true object has not (counted whole,
    however few its pixels: |holes(prediction) - holes(truth)|)."""
    yy, xx = np.mgrid[:size, :size] / size
    true = ((xx - 0.45) / 0.3) ** 2 + ((yy - 0.5) / 0.38) ** 2 < 1
    pred = ((xx - 0.55) / 0.3) ** 2 + ((yy - 0.5) / 0.34) ** 2 < 1
    holed = true & ~(((xx - 0.4) ** 2 + (yy - 0.4) ** 2 < 0.006) | ((xx - 0.55) ** 2 + (yy - 0.65) ** 2 < 0.003))
    to_alpha = lambda mask: torch.from_numpy(mask.astype(np.float32))[None, None]
    iou = (true & pred).sum() / (true | pred).sum()
    holes = hole_error(to_alpha(holed), to_alpha(true)).item()
    overlap = np.ones((size, size, 3), np.float32)
    overlap[true & pred], overlap[pred & ~true], overlap[true & ~pred] = (
        (0.3, 0.7, 0.3),
        (0.9, 0.3, 0.3),
        (0.3, 0.4, 0.9),
    )
    panels = [
        (overlap, f"IoU = both / either = {iou:.2f}"),
        (true, "true object: no hole"),
        (holed, f"predicted: Holes = |{holes:.0f} - 0| = {holes:.0f}"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6))
    for ax, (image, title) in zip(axes, panels):
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    return fig


@torch.no_grad()
def compare_holes(dataset, generators: dict, n_images: int = 4):
    """Where two trainings differ in whole shapes: the `n_images` pictures of `dataset` on which their
    hole errors (|holes of the matte - holes of the truth|, as `evaluate` counts them) differ most,
    either way. `generators`: {label: a GModel or checkpoint path, or a list of them (one per random
    seed), whose errors are averaged}. Each row: the photo at its own shape, the true mask with its
    holes, and each label's (first) matte with its holes. Returns (figure, {label: mean error})."""
    arms = {
        label: [get_generator(g) for g in (found if isinstance(found, list) else [found])]
        for label, found in generators.items()
    }
    loader = DataLoader(dataset, batch_size=EVAL_BATCH)
    photos, truth = (torch.cat(parts) for parts in zip(*((x, y[:, 3:]) for x, y in loader)))
    mattes = {
        label: [
            torch.cat([predict_alpha(g, x.to(next(g.parameters()).device)).cpu() for x, _ in loader]) for g in models
        ]
        for label, models in arms.items()
    }
    true_holes = hole_count(truth)
    errors = {
        label: np.mean([np.abs(hole_count(m) - true_holes) for m in found], axis=0) for label, found in mattes.items()
    }
    first, second = errors.values()
    order = [int(i) for i in np.argsort(-np.abs(first - second), kind="stable")[:n_images]]
    aspects = [_aspect(dataset, i) for i in order]
    fig, axes = _rows(aspects, 2 + len(arms))
    for row, i, aspect in zip(axes, order, aspects):
        panels = [(_hwc(photos[i]), "photo"), (truth[i, 0].numpy(), f"true mask, holes: {true_holes[i]}")]
        for label, found in mattes.items():
            count = hole_count(found[0][i : i + 1])[0]
            panels.append((found[0][i, 0].numpy(), f"{label}, holes: {count}"))
        for ax, (image, title) in zip(row, panels):
            ax.imshow(np.clip(image, 0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, aspect=aspect)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig, {label: float(error.mean()) for label, error in errors.items()}
