"""Paired images for training: decode the photo/cut-out pairs (found by pairs.py) once into
uint8 tensors in memory, augment both jointly, and serve train/val/test DataLoaders.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

from .augment import augment_batch, joint_augmentation
from .backgrounds import Backgrounds, paste
from .errors import ConfigError, DataError, ImageError
from .images import border_matte, open_image
from .models import setting
from .pairs import find_splits
from .paths import default_sample_dir
from .photos import load_photos
from .sample import make_sample, make_transfer, read_manifest


@dataclass(frozen=True)
class DataConfig:
    """Where the pairs are and how they are served: what `make_loaders` takes, whole."""

    data_root: str | None = setting(None, "folder holding the photo and cut-out folders (default: the course's sample)")
    bg_path: str | None = setting(None, "folder of photos (with background); use with --no-bg-path")
    no_bg_path: str | None = setting(None, "folder of cut-outs (no background), same file stems as --bg-path")
    batch_size: int = setting(16, "pictures per step (per process under torchrun)", positive=True)
    num_workers: int = setting(0, "DataLoader worker processes (0: in the main process)")
    augment: bool = setting(True, "random flips and crops of the training pairs")
    # Off by default: on the sample (cpu profile, 30 epochs) it lowered the transfer IoU (0.737 vs
    # 0.756) and raised SAD on both splits; it is for data with few backgrounds per cut-out.
    composite: bool = setting(
        False, "paste the training cut-outs on fresh backgrounds (real photos, textures) each time"
    )


def estimate_alpha(rgb: np.ndarray, low: float = 12.0, high: float = 40.0) -> np.ndarray:
    """Alpha (H, W) in [0, 1] for a cut-out saved as RGB (H, W, 3) uint8 on a plain background:
    `border_matte` with `low` and `high` on the 0-255 scale, which keeps anti-aliased edges soft."""
    x = torch.from_numpy(np.array(rgb, dtype=np.float32)).permute(2, 0, 1)[None]  # (1, 3, H, W), a copy
    return border_matte(x, low, high)[0, 0].numpy()


def load_pair(photo: Path, cutout: Path, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair decoded and resized: photo (3, S, S) and cut-out RGBA (4, S, S), both uint8."""
    x = open_image(photo, "RGB").resize((image_size, image_size), Image.BILINEAR)
    target = open_image(cutout, None)
    if target.mode == "RGB":  # a cut-out on a plain background: estimate its matte
        alpha = Image.fromarray((estimate_alpha(np.asarray(target)) * 255 + 0.5).astype(np.uint8))
        target = Image.merge("RGBA", (*target.split(), alpha))
    y = target.resize((image_size, image_size), Image.BILINEAR)
    to_tensor = lambda im: torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()
    return to_tensor(x), to_tensor(y)


class PairedImageDataset(Dataset):
    """Photo/cut-out pairs decoded once into memory as uint8 tensors of `image_size`.

    Items are (photo (3, S, S), cut-out RGBA (4, S, S)) as floats in [0, 1]. With `backgrounds`,
    the photo is made anew each time: the (augmented) cut-out pasted on a fresh background, so
    that a few hundred cut-outs give endless pairs. Files that cannot be read are skipped, listed
    in `.skipped` and reported in one warning."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        image_size: int = 64,
        augment: bool = False,
        backgrounds: Backgrounds | None = None,
    ):
        self.pairs, self.image_size, self.backgrounds = [], image_size, backgrounds
        self.skipped: list[tuple[Path, str]] = []
        self.transform = joint_augmentation(image_size) if augment else None

        def load(pair):
            try:
                return pair, load_pair(*pair, image_size)
            except ImageError as exc:
                return pair, exc

        with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
            results = list(pool.map(load, pairs))
        xs, ys = [], []
        for pair, result in results:
            if isinstance(result, ImageError):
                self.skipped.append((pair[0], str(result)))
                continue
            self.pairs.append(pair)
            xs.append(result[0])
            ys.append(result[1])
        if self.skipped:
            warnings.warn(
                f"{len(self.skipped)} pair(s) skipped, unreadable: " + "; ".join(m for _, m in self.skipped[:3]),
                stacklevel=2,
            )
        empty = torch.empty(0, dtype=torch.uint8)
        self.inputs = torch.stack(xs) if xs else empty.reshape(0, 3, image_size, image_size)  # (N, 3, S, S)
        self.targets = torch.stack(ys) if ys else empty.reshape(0, 4, image_size, image_size)  # (N, 4, S, S)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = tv_tensors.Image(self.inputs[index]), tv_tensors.Image(self.targets[index])
        if self.transform is not None:
            x, y = self.transform(x, y)
        x, y = x.as_subclass(torch.Tensor).float() / 255.0, y.as_subclass(torch.Tensor).float() / 255.0
        if self.backgrounds is not None:
            x = paste(y[None], self.backgrounds.draw(1))[0]
        return x, y

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items `indices` at once (a DataLoader asks for a batch this way): the same pictures
        as `self[i]`, augmented by `augment_batch` and pasted on backgrounds in one call each."""
        both = torch.cat([self.inputs[indices], self.targets[indices]], 1).float() / 255.0  # (B, 7, S, S)
        if self.transform is not None:
            both = augment_batch(both)
        photo, cutout = both[:, :3], both[:, 3:]
        if self.backgrounds is not None:
            photo = paste(cutout, self.backgrounds.draw(len(cutout)))
        return list(zip(photo, cutout))


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


def _with_source(data: DataConfig) -> DataConfig:
    """`data`, with the course's sample (made first if missing) when it names no folder."""
    if data.data_root is not None or data.bg_path is not None:
        return data
    root = default_sample_dir()
    if read_manifest(root) is None:
        make_sample(root)
    return replace(data, data_root=str(root))


def _splits(data: DataConfig, warn: bool = True) -> dict[str, list]:
    data = _with_source(data)
    return find_splits(data.data_root, data.bg_path, data.no_bg_path, warn=warn)


def check_batch_size(data: DataConfig) -> None:
    """A ConfigError when the batch size exceeds the training pairs, found before any is decoded."""
    n_train = len(_splits(data, warn=False)["train"])
    where = data.bg_path or data.data_root or default_sample_dir()
    if n_train == 0:
        raise DataError(f"{where}: no pairs in the training split; add pairs or check the manifest's split.")
    if data.batch_size > n_train:
        raise ConfigError(
            f"batch_size={data.batch_size}: larger than the {n_train} training pair(s) in {where}; "
            f"use batch_size={n_train} or less, or add pairs."
        )


def make_loaders(data: DataConfig | str | os.PathLike | None = None, image_size: int = 64, **fields) -> Loaders:
    """train/val/test DataLoaders of pictures of `image_size` over the pairs `data` names: a
    DataConfig, or a folder as its `data_root` (default: the course's sample, made first if it is
    missing); `fields` replace the config's (`make_loaders(root, 128, augment=False)`). Only the
    train loader shuffles and augments; `test` is what `predict_and_compare` takes."""
    if not isinstance(data, DataConfig):
        data = DataConfig(data_root=None if data is None else str(data))
    data = replace(data, **fields)
    splits = _splits(data)
    backgrounds = Backgrounds(load_photos("train"), image_size) if data.composite else None
    datasets = {
        "train": PairedImageDataset(splits["train"], image_size, augment=data.augment, backgrounds=backgrounds),
        "val": PairedImageDataset(splits["val"], image_size),
        "test": PairedImageDataset(splits["test"], image_size),
    }
    common = {
        "batch_size": data.batch_size,
        "num_workers": data.num_workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": data.num_workers > 0,
    }
    return Loaders(
        train=DataLoader(
            datasets["train"],
            shuffle=True,
            generator=torch.Generator().manual_seed(0),  # train() reseeds it with its own seed
            drop_last=len(datasets["train"]) > data.batch_size,
            **common,
        ),
        val=DataLoader(datasets["val"], shuffle=False, **common),
        test=DataLoader(datasets["test"], shuffle=False, **common),
    )


def transfer_loader(image_size: int = 64, batch_size: int = 32, root: str | os.PathLike | None = None) -> DataLoader:
    """The transfer split at `root` (default data/transfer, made first if missing): pictures of real
    photos that training never sees, to measure how the model does beyond its own sample."""
    pairs = find_splits(root if root is not None else make_transfer(), warn=False)["test"]
    return DataLoader(PairedImageDataset(pairs, image_size), batch_size=batch_size, shuffle=False)
