"""How good a matte is, measured with torchmetrics: alpha IoU (threshold 0.5), alpha MAE, the PSNR of
the cut-out composited over a fixed background, and the alpha-matting benchmark's SAD, MSE, gradient
and connectivity errors, which see soft edges; plus the trivial baseline to beat.

The benchmark (Rhemann et al., CVPR 2009; the Deep Image Matting evaluation code) measures over a
trimap's unknown region and reports SAD, Grad and Conn in thousands; we have no trimap, so we measure
over the whole picture, and report them per picture: the sum over its pixels, averaged over pictures.
They grow with the picture's area: compare them at one image size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch.utils.data import DataLoader
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryJaccardIndex
from torchmetrics.functional.classification import binary_jaccard_index
from torchmetrics.image import PeakSignalNoiseRatio
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError

from ..data.images import border_matte, over
from ..settings import EVAL_BATCH

# The fixed background of the composite PSNR: a mid grey-green no sample background is tuned to.
COMPOSITE_BACKGROUND = (0.4, 0.6, 0.4)


def composite(rgb: torch.Tensor, alpha: torch.Tensor, background=COMPOSITE_BACKGROUND) -> torch.Tensor:
    """RGB (B, 3, H, W) with alpha (B, 1, H, W) over a plain colour: what a cut-out looks like pasted."""
    return over(
        torch.cat([rgb, alpha], 1), torch.tensor(background, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    )


def baseline_alpha(photo: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """The trivial baseline: alpha from each pixel's colour distance to the median colour of the
    picture's border, (B, 3, H, W) -> (B, 1, H, W), 0.5 at `threshold`. What a colour threshold can do."""
    return border_matte(photo, threshold / 2, threshold * 1.5)


def sad_error(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> torch.Tensor:
    """Sum of absolute differences of each picture's alpha, (B, 1, H, W) -> (B,): the benchmark's SAD,
    not divided by 1000 (our pictures are small)."""
    return (pred_alpha - true_alpha).abs().flatten(1).sum(1)


def gradient_magnitude(alpha: torch.Tensor, sigma: float = 1.4) -> torch.Tensor:
    """|grad alpha| (B, 1, H, W) by first-order Gaussian derivative filters, in alpha per pixel: the
    derivatives of alpha smoothed by a Gaussian of `sigma` pixels (scipy's `gaussian_filter(order=1)`,
    cut at 4 sigma, borders repeated), one conv2d on alpha's device."""
    radius = int(4 * sigma + 0.5)
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    gauss = torch.exp(-(x**2) / (2 * sigma**2))
    gauss = gauss / gauss.sum()
    d_dx = torch.outer(gauss, -x / sigma**2 * gauss)  # smooth down the rows, differentiate along them
    kernels = torch.stack([d_dx, d_dx.T])[:, None].to(alpha.device, alpha.dtype)  # (2, 1, K, K): d/dx, d/dy
    gradient = F.conv2d(F.pad(alpha, (radius,) * 4, mode="replicate"), kernels)  # (B, 2, H, W)
    return gradient.norm(dim=1, keepdim=True)


def gradient_error(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> torch.Tensor:
    """Sum over each picture of (|grad pred| - |grad true|)^2, (B, 1, H, W) -> (B,): the benchmark's
    gradient error, sigma 1.4, which grows where an edge is blurred, sharpened or misplaced. (The DIM
    code also scales its kernels to unit L2 norm, which makes its values about 97 times ours.)"""
    pred_grad, true_grad = gradient_magnitude(torch.cat([pred_alpha, true_alpha])).chunk(2)
    return (pred_grad - true_grad).square().flatten(1).sum(1)


def connectivity_error(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> torch.Tensor:
    """The benchmark's connectivity error of each picture, (B, 1, H, W) -> (B,), on the CPU. A pixel's
    level l is the last threshold t = 0, 0.1, ..., 1 at which it still lay in the largest 4-connected
    component of (pred >= t) & (true >= t) (1 if it always did); phi = 1 - d [d >= 0.15] with
    d = alpha - l is how detached its alpha is from the object; the error sums |phi_pred - phi_true|.
    A speck or a soft part cut off from the object costs its alpha; one joined to it costs little."""
    pred, true = (a[:, 0].detach().float().cpu().numpy() for a in (pred_alpha, true_alpha))
    level, connected = np.ones_like(pred), np.ones(pred.shape, dtype=bool)
    for i in range(1, 11):  # at t = 0 every pixel is in: the whole picture is one component
        still = connected & _largest_components((pred >= i / 10) & (true >= i / 10))
        level[connected & ~still] = (i - 1) / 10
        connected = still
    pred_d, true_d = pred - level, true - level
    error = np.abs(pred_d * (pred_d >= 0.15) - true_d * (true_d >= 0.15)).sum((1, 2))
    return torch.from_numpy(error).to(pred_alpha.device)


# 4-neighbours within a picture, none across pictures: scipy labels a whole batch (B, H, W) at once.
_FOUR_NEIGHBOURS = np.zeros((3, 3, 3), dtype=bool)
_FOUR_NEIGHBOURS[1] = ndimage.generate_binary_structure(2, 1)


def _largest_components(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of each picture's mask (B, H, W) (all of them on a tie)."""
    labels, _ = ndimage.label(mask, structure=_FOUR_NEIGHBOURS)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # the background is no component
    size = sizes[labels]  # (B, H, W): the size of each pixel's component
    return mask & (size == size.reshape(len(mask), -1).max(1)[:, None, None])


def hole_count(alpha: torch.Tensor) -> np.ndarray:
    """How many holes each picture's object has, (B, 1, H, W) -> (B,) ints: the 4-connected
    regions of background (alpha < 0.5) that scipy's `binary_fill_holes` fills, wholly inside the
    object (a face with a hole in it, the gap under an arm)."""
    objects = alpha[:, 0].detach().float().cpu().numpy() >= 0.5
    return np.array([ndimage.label(ndimage.binary_fill_holes(o) & ~o)[1] for o in objects], dtype=np.int64)


def hole_error(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> torch.Tensor:
    """|holes of the prediction - holes of the truth| of each picture, (B, 1, H, W) -> (B,): a
    whole-shape error that per-pixel metrics barely see (a hole costs a few pixels)."""
    error = np.abs(hole_count(pred_alpha) - hole_count(true_alpha)).astype(np.float32)
    return torch.from_numpy(error).to(pred_alpha.device)


def matte_metrics(device: torch.device | str = "cpu") -> _MatteMetrics:
    """A fresh collection of the eight metrics; `update(pred_alpha, photo, true_rgba)`."""
    return _MatteMetrics().to(device)


PER_PICTURE = {"sad": sad_error, "grad": gradient_error, "conn": connectivity_error, "holes": hole_error}


class _MatteMetrics(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.iou = BinaryJaccardIndex(threshold=0.5)  # pooled: the pixels of every picture counted together
        self.mae = MeanAbsoluteError()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.mse = MeanSquaredError()
        self.per_picture = torch.nn.ModuleDict({name: MeanMetric() for name in PER_PICTURE})  # means over pictures

    def update(self, pred_alpha: torch.Tensor, photo: torch.Tensor, target: torch.Tensor) -> None:
        """`pred_alpha` (B, 1, H, W); the colour comes from the photo, as in the RGBA export."""
        pred_alpha, true_alpha = pred_alpha.contiguous(), target[:, 3:].contiguous()
        self.iou.update(pred_alpha, (true_alpha >= 0.5).int())
        self.psnr.update(composite(photo, pred_alpha), composite(target[:, :3], true_alpha))
        for metric in (self.mae, self.mse):
            metric.update(pred_alpha, true_alpha)
        for name, error in PER_PICTURE.items():
            self.per_picture[name].update(error(pred_alpha, true_alpha))

    def compute(self) -> dict[str, float]:
        metrics = {"iou": self.iou, "mae": self.mae, "psnr": self.psnr, "mse": self.mse, **self.per_picture}
        values = {name: metric.compute().item() for name, metric in metrics.items()}
        return {key: values[key] for _, key, _ in COLUMNS}  # in the table's order


def per_image_iou_mae(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> tuple[list[float], list[float]]:
    """IoU and MAE of each image of a batch, for titles and for finding the worst cases: each
    picture's own IoU (an empty picture predicted empty: 1.0), where `evaluate` pools the pixels
    of the whole split."""
    ious = [
        binary_jaccard_index(p, (t >= 0.5).int(), threshold=0.5, zero_division=1.0).item()
        for p, t in zip(pred_alpha, true_alpha)
    ]
    maes = (pred_alpha - true_alpha).abs().flatten(1).mean(1).tolist()
    return ious, maes


def per_image_matting_errors(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> dict[str, list[float]]:
    """The matting benchmark's errors of each image of a batch: {"sad", "mse", "grad", "conn"}, each a
    list, in the units `evaluate` averages."""
    mse = lambda pred, true: (pred - true).square().flatten(1).mean(1)
    errors = {"sad": sad_error, "mse": mse, "grad": gradient_error, "conn": connectivity_error}
    return {name: fn(pred_alpha, true_alpha).tolist() for name, fn in errors.items()}


def predict_alpha(model: torch.nn.Module, photo: torch.Tensor) -> torch.Tensor:
    """The generator's alpha (B, 1, H, W) for a batch of photos, in eval mode."""
    return model.predict(photo)[:, 3:]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module | None, loader, device: torch.device | str | None = None, baseline: bool = True
) -> dict:
    """Metrics of `model` (a GModel, or None for the baseline alone) over every batch of `loader`:
    {"model": {...}, "baseline": {...}}, each with iou, mae, psnr, sad, mse, grad, conn, holes. IoU,
    MAE, PSNR and MSE pool the pixels of every picture (one IoU of the whole split, not a mean of
    the pictures' own, which `per_image_scores` gives); SAD, Grad and Conn are per picture (sums
    over its pixels), averaged over pictures; holes: the mean |holes(pred) - holes(true)|."""
    if device is None:
        device = next(model.parameters()).device if model is not None else "cpu"
    results = {}
    if model is not None:
        results["model"] = _run(lambda photo: predict_alpha(model, photo), loader, device)
    if baseline:
        results["baseline"] = _run(baseline_alpha, loader, device)
    return results


COLUMNS = (("IoU", "iou", ".3f"), ("MAE", "mae", ".3f"), ("PSNR", "psnr", ".2f"), ("SAD", "sad", ".1f"))
COLUMNS += (("MSE", "mse", ".4f"), ("Grad", "grad", ".2f"), ("Conn", "conn", ".1f"), ("Holes", "holes", ".2f"))


def metrics_table(results: dict[str, dict]) -> str:
    """`evaluate`'s results of each split ({"test": ..., "new_photos": ...}) as one plain-text table:
    a row for the model and one for the baseline of each split, IoU the first number of a row."""
    width = max(12, *(len(split) + 1 for split in results))  # the split's name, then who: model or baseline
    header = " " * (width + 10) + "".join(f"{title:>8s}" for title, _, _ in COLUMNS)
    lines = [header + "  (IoU: the split's pixels pooled; SAD, Grad, Conn: sums over a picture, mean over pictures;"]
    lines[0] += " Holes: mean |pred - true|)"
    for split, rows in results.items():
        for who, m in rows.items():
            lines.append(f"{split:{width}s}{who:10s}" + "".join(f"{m[key]:8{fmt}}" for _, key, fmt in COLUMNS))
    return "\n".join(lines)


def _run(predict, loader, device) -> dict[str, float]:
    metrics = matte_metrics(device)
    for photo, target in loader:
        photo, target = photo.to(device), target.to(device)
        metrics.update(predict(photo), photo, target)
    return metrics.compute()


@dataclass
class Scores:
    """Per-image scores of a matte over a data set, in the data set's order: IoU and MAE, and the
    matting benchmark's SAD, MSE, gradient and connectivity errors (as `evaluate` measures them)."""

    iou: np.ndarray
    mae: np.ndarray
    sad: np.ndarray
    mse: np.ndarray
    grad: np.ndarray
    conn: np.ndarray

    def worst(self, n: int = 4) -> list[int]:
        """Indices of the `n` images with the lowest IoU, worst first."""
        return [int(i) for i in np.argsort(self.iou, kind="stable")[:n]]


@torch.no_grad()
def per_image_scores(dataset, generator: torch.nn.Module | None = None, batch_size: int = EVAL_BATCH) -> Scores:
    """The `Scores` of each image of `dataset` for `generator`'s alpha, or for the colour-threshold
    baseline when `generator` is None."""
    device = next(generator.parameters()).device if generator is not None else torch.device("cpu")
    scores: dict[str, list[float]] = {"iou": [], "mae": []}
    for photo, target in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        photo = photo.to(device)
        alpha = (predict_alpha(generator, photo) if generator is not None else baseline_alpha(photo)).cpu()
        iou, mae = per_image_iou_mae(alpha, target[:, 3:])
        for name, values in {"iou": iou, "mae": mae, **per_image_matting_errors(alpha, target[:, 3:])}.items():
            scores.setdefault(name, []).extend(values)
    return Scores(**{name: np.array(values) for name, values in scores.items()})
