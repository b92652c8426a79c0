"""Data pipeline: our in-memory uint8 dataset vs one that decodes every file on every access."""

from __future__ import annotations

import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.functional import to_tensor

from ..data.augment import CROP_RATIO, CROP_SCALE
from ..data.backgrounds import Backgrounds
from ..data.dataset import PairedImageDataset
from ..data.photos import load_photos
from ..settings import TrainConfig
from .common import Row


class PlainPairs(Dataset):
    """What most tutorials do: open, convert, resize and to-tensor both files on every access."""

    def __init__(self, pairs: list, image_size: int):
        self.pairs, self.size = pairs, image_size
        self.transform = v2.Compose(  # a tutorial's joint flip and crop, one picture at a time
            [v2.RandomHorizontalFlip(), v2.RandomResizedCrop(image_size, CROP_SCALE, CROP_RATIO, antialias=True)]
        )

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        size, (photo, cutout) = (self.size, self.size), self.pairs[index]
        x = to_tensor(Image.open(photo).convert("RGB").resize(size, Image.BILINEAR))
        y = to_tensor(Image.open(cutout).convert("RGBA").resize(size, Image.BILINEAR))
        x, y = self.transform(tv_tensors.Image(x), tv_tensors.Image(y))  # the same augmentation as ours
        return x.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)


def bench_data(pairs: list, config: TrainConfig, n_batches: int) -> tuple[list[Row], PairedImageDataset]:
    """Batches/s of our in-memory uint8 dataset, each cut-out pasted on a fresh background as
    training does, vs PlainPairs: same batch, size and augmentation; and ours serving the pairs as
    stored (no pasting)."""
    size, start = config.g.image_size, time.perf_counter()
    ours = PairedImageDataset(pairs, size, augment=True, backgrounds=Backgrounds(load_photos("train"), size))
    build, rates = time.perf_counter() - start, []
    stored = PairedImageDataset(pairs, size, augment=True)
    for dataset in (ours, PlainPairs(pairs, size), stored):
        loader = DataLoader(dataset, batch_size=config.data.batch_size, shuffle=True, drop_last=True)
        batches, start = 0, time.perf_counter()
        while batches < n_batches:
            batches += sum(1 for _ in zip(range(n_batches - batches), loader))
        rates.append(batches / (time.perf_counter() - start))
    note = f"batch {config.data.batch_size}, {config.g.image_size} px; "
    note += f"ours decodes {len(pairs)} pairs and cuts the photos once in {build:.1f} s"
    rows = [
        Row("data pipeline", "batches/s", *rates[:2], target=">= 20x", met=rates[0] >= 20 * rates[1], note=note),
        Row(
            "  ours, pairs as stored", "batches/s", rates[2], rates[1], note="no fresh backgrounds: what pasting costs"
        ),
    ]
    return rows, ours
