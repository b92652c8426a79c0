"""How good a matte is, measured with torchmetrics: alpha IoU (threshold 0.5), alpha MAE, and the
PSNR of the cut-out composited over a fixed background; plus the trivial baseline to beat.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader
from torchmetrics.classification import BinaryJaccardIndex
from torchmetrics.functional.classification import binary_jaccard_index
from torchmetrics.image import PeakSignalNoiseRatio
from torchmetrics.regression import MeanAbsoluteError

from .images import border_matte

# The fixed background of the composite PSNR: a mid grey-green no sample background is tuned to.
COMPOSITE_BACKGROUND = (0.4, 0.6, 0.4)


def composite(rgb: torch.Tensor, alpha: torch.Tensor, background=COMPOSITE_BACKGROUND) -> torch.Tensor:
    """RGB (B, 3, H, W) with alpha (B, 1, H, W) over a plain colour: what a cut-out looks like pasted."""
    bg = torch.tensor(background, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return rgb * alpha + bg * (1 - alpha)


def baseline_alpha(photo: torch.Tensor, threshold: float = 0.15) -> torch.Tensor:
    """The trivial baseline: alpha from each pixel's colour distance to the median colour of the
    picture's border, (B, 3, H, W) -> (B, 1, H, W), 0.5 at `threshold`. What a colour threshold can do."""
    return border_matte(photo, threshold / 2, threshold * 1.5)


def matte_metrics(device: torch.device | str = "cpu") -> _MatteMetrics:
    """A fresh collection of the three metrics; `update(pred_alpha, true_alpha, photo, true_rgba)`."""
    return _MatteMetrics().to(device)


class _MatteMetrics(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.iou = BinaryJaccardIndex(threshold=0.5)
        self.mae = MeanAbsoluteError()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)

    def update(self, pred_alpha: torch.Tensor, photo: torch.Tensor, target: torch.Tensor) -> None:
        """`pred_alpha` (B, 1, H, W); the colour comes from the photo, as in the RGBA export."""
        pred_alpha, true_alpha = pred_alpha.contiguous(), target[:, 3:].contiguous()
        self.iou.update(pred_alpha, (true_alpha >= 0.5).int())
        self.mae.update(pred_alpha, true_alpha)
        self.psnr.update(composite(photo, pred_alpha), composite(target[:, :3], true_alpha))

    def compute(self) -> dict[str, float]:
        return {"iou": self.iou.compute().item(), "mae": self.mae.compute().item(), "psnr": self.psnr.compute().item()}


def per_image_iou_mae(pred_alpha: torch.Tensor, true_alpha: torch.Tensor) -> tuple[list[float], list[float]]:
    """IoU and MAE of each image of a batch, for titles and for finding the worst cases."""
    ious = [binary_jaccard_index(p, (t >= 0.5).int(), threshold=0.5).item() for p, t in zip(pred_alpha, true_alpha)]
    maes = (pred_alpha - true_alpha).abs().flatten(1).mean(1).tolist()
    return ious, maes


def predict_alpha(model: torch.nn.Module, photo: torch.Tensor) -> torch.Tensor:
    """The generator's alpha (B, 1, H, W) for a batch of photos, in eval mode."""
    return model.predict(photo)[:, 3:]


@torch.no_grad()
def evaluate(
    model: torch.nn.Module | None, loader, device: torch.device | str | None = None, baseline: bool = True
) -> dict:
    """Metrics of `model` (a GModel, or None for the baseline alone) over every batch of `loader`:
    {"model": {iou, mae, psnr}, "baseline": {iou, mae, psnr}}."""
    if device is None:
        device = next(model.parameters()).device if model is not None else "cpu"
    results = {}
    if model is not None:
        results["model"] = _run(lambda photo: predict_alpha(model, photo), loader, device)
    if baseline:
        results["baseline"] = _run(baseline_alpha, loader, device)
    return results


def _run(predict, loader, device) -> dict[str, float]:
    metrics = matte_metrics(device)
    for photo, target in loader:
        photo, target = photo.to(device), target.to(device)
        metrics.update(predict(photo), photo, target)
    return metrics.compute()


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
