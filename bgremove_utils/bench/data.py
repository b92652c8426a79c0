"""Data pipeline: our in-memory uint8 dataset vs one that decodes every file on every access; and
how long the training loop waits for its batches."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.functional import to_tensor

from ..data.augment import CROP_RATIO, CROP_SCALE
from ..data.dataset import PairedImageDataset
from ..settings import DataConfig, TrainConfig
from ..training.loop import train
from .common import Row

WAIT_TARGET = 0.10  # the most of a training step the loop may spend waiting for data, in the default settings


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
    """Batches/s of our in-memory uint8 dataset serving the pairs as stored (the default) vs
    PlainPairs: same batch, size and augmentation (flips and crops: torchvision's transforms have no
    zoom-out like ours, which costs the same one resampling); ours is returned."""
    size, start = config.g.image_size, time.perf_counter()
    ours = PairedImageDataset(pairs, size, augment=True)
    build, rates = time.perf_counter() - start, []
    for dataset in (ours, PlainPairs(pairs, size)):
        loader = DataLoader(dataset, batch_size=config.data.batch_size, shuffle=True, drop_last=True)
        batches, start = 0, time.perf_counter()
        while batches < n_batches:
            batches += sum(1 for _ in zip(range(n_batches - batches), loader))
        rates.append(batches / (time.perf_counter() - start))
    note = f"the default; batch {config.data.batch_size}, {config.g.image_size} px; "
    note += f"ours decodes {len(pairs)} pairs once in {build:.1f} s"
    return [Row("data pipeline", "batches/s", *rates, target=">= 20x", met=rates[0] >= 20 * rates[1], note=note)], ours


def bench_data_wait(kwargs: dict) -> list[Row]:
    """The share of a training pass the loop spends getting its next batch ready (the loader, the copy,
    D's backgrounds) rather than stepping, measured by `train` in one epoch of the profile (`kwargs`):
    in the main process or 2 workers."""
    rows, default = [], DataConfig()
    for workers in (0, 2):
        with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
            history = train(checkpoint_dir=tmp, progress=False, sample_every=0, epochs=1, **kwargs, num_workers=workers)
        wait, is_default = history[0]["data_wait"], workers == default.num_workers
        note = "the default settings" if is_default else ""
        note += "; one epoch: the workers' start included" if workers else ""
        target, met = (f"< {WAIT_TARGET:.0%}", wait < WAIT_TARGET) if is_default else ("", None)
        rows.append(Row(f"data wait, {workers} workers", "share", wait, None, False, target, met, note.strip("; ")))
    return rows
