"""Paired images for training: decode the photo/cut-out pairs (found by pairs.py) once into
uint8 tensors in memory, augment both jointly (augment.py), and serve train/val/test DataLoaders.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import ConfigError, DataError, ImageError
from ..settings import EVAL_BATCH, DataConfig, GConfig
from .augment import augment_pairs
from .course import course_data_root
from .images import open_image
from .masks import read_matte
from .pairs import find_splits
from .sample import make_new_photos


def load_pair(
    photo: Path, cutout: Path, image_size: int, keep_empty: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair decoded and resized: photo (3, S, S) and cut-out RGBA (4, S, S), both uint8. The
    target is read by `masks.read_matte` (a cut-out keeps its colours, a mask takes the photo's);
    an unreadable file, or (unless `keep_empty`) a mask that is empty or full, is an `ImageError`
    naming it."""
    source = open_image(photo, "RGB")
    x = source.resize((image_size, image_size), Image.BILINEAR)
    matte = read_matte(cutout)
    if matte.problem and not keep_empty:  # kept only to be scored: a picture with no object is a fair test
        raise ImageError(matte.problem)
    height, width = matte.alpha.shape
    colours = source.resize((width, height), Image.BILINEAR) if matte.colours is None else matte.colours
    target = Image.merge("RGBA", (*colours.split(), Image.fromarray(matte.alpha)))
    y = target.resize((image_size, image_size), Image.BILINEAR)
    return pil_to_tensor(x), pil_to_tensor(y)


class PairedImageDataset(Dataset):
    """Photo/cut-out pairs decoded once into memory as uint8 tensors of `image_size`.

    Items are (photo (3, S, S), cut-out RGBA (4, S, S)) as floats in [0, 1]. Pairs that cannot be
    used (a file that cannot be read, a mask that is empty or full) are skipped, listed in
    `.skipped` (photo, why) and reported in one warning. `keep_empty`: pictures only scored
    (validation, test, real photographs) keep an empty or full mask: a picture without an object
    is a fair test.
    `zoom_out`: with `augment`, the smallest side half the pictures are shrunk to (`augment_batch`)."""

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        image_size: int = GConfig.image_size,
        augment: bool = False,
        keep_empty: bool = False,
        zoom_out: float = 1.0,
    ):
        self.pairs, self.augment, self.zoom_out = [], augment, zoom_out
        self.skipped: list[tuple[Path, str]] = []

        def load(pair):
            try:
                return pair, load_pair(*pair, image_size, keep_empty)
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
                f"{len(self.skipped)} pair(s) skipped (a file unreadable, or a mask empty or full): "
                + "; ".join(m for _, m in self.skipped[:3]),
                stacklevel=2,
            )
        empty = torch.empty(0, dtype=torch.uint8)
        self.inputs = torch.stack(xs) if xs else empty.reshape(0, 3, image_size, image_size)  # (N, 3, S, S)
        self.targets = torch.stack(ys) if ys else empty.reshape(0, 4, image_size, image_size)  # (N, 4, S, S)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.__getitems__([index])[0]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items `indices` at once (a DataLoader asks for a batch this way), augmented by
        `augment_pairs` in one call."""
        photo, cutout = self.inputs[indices].float() / 255.0, self.targets[indices].float() / 255.0
        if self.augment:
            photo, cutout = augment_pairs(photo, cutout, self.zoom_out)
        return list(zip(photo, cutout))


def _named(data: DataConfig | str | os.PathLike | None, **fields) -> DataConfig:
    """`data` as a DataConfig that names its pairs: a folder (or several joined by os.pathsep) as its
    `data_root`; none named: the course's own pairs (`course.course_data_root`)."""
    if not isinstance(data, DataConfig):
        data = DataConfig(data_root=None if data is None else str(data))
    data = replace(data, **fields)
    return data if data.names_source() else replace(data, data_root=course_data_root())


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


def make_loaders(
    data: DataConfig | str | os.PathLike | None = None, image_size: int = GConfig.image_size, **fields
) -> Loaders:
    """train/val/test DataLoaders of pictures of `image_size` over the pairs `data` names: a
    DataConfig, or a folder (several joined by os.pathsep) as its `data_root` (default: the course's
    real pairs, `course.course_data_root`); `fields` replace the config's (`make_loaders(root, 128,
    augment=False)`). Only the train loader shuffles (with a generator of its own, which `train`
    seeds with the run's seed) and augments; `test` is what `predict_and_compare` takes. A batch
    larger than the training pairs is refused before any picture is decoded."""
    data = _named(data, **fields)
    where = data.bg_path or data.data_root
    splits = find_splits(data.data_root, data.bg_path, data.no_bg_path)
    n_train = len(splits["train"])
    if n_train == 0:
        raise DataError(f"{where}: no pairs in the training split; add pairs or check the manifest's split.")
    if data.batch_size > n_train:
        raise ConfigError(
            f"batch_size={data.batch_size}: larger than the {n_train} training pair(s) in {where}; "
            f"use batch_size={n_train} or less, or add pairs."
        )
    datasets = {
        "train": PairedImageDataset(splits["train"], image_size, augment=data.augment, zoom_out=data.zoom_out),
        "val": PairedImageDataset(splits["val"], image_size, keep_empty=True),
        "test": PairedImageDataset(splits["test"], image_size, keep_empty=True),
    }
    if len(datasets["val"]) == 0:
        raise DataError(f"{where}: no readable pair in the validation split; check-data DIR says which files fail.")
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
            generator=torch.Generator(),
            drop_last=len(datasets["train"]) > data.batch_size,
            **common,
        ),
        val=DataLoader(datasets["val"], shuffle=False, **common),
        test=DataLoader(datasets["test"], shuffle=False, **common),
    )


def split_loader(
    data: DataConfig | str | os.PathLike | None, image_size: int, split: str = "test", batch_size: int = EVAL_BATCH
) -> DataLoader:
    """The pictures of one split ("train", "val" or "test") of the pairs `data` names (as in
    `make_loaders`), each once, in order and as stored (no augmentation, no pasting): what
    `evaluate` scores. No training batch is built, so a folder smaller than one is scored too."""
    data = _named(data)
    pairs = find_splits(data.data_root, data.bg_path, data.no_bg_path)[split]
    return DataLoader(PairedImageDataset(pairs, image_size, keep_empty=True), batch_size=batch_size, shuffle=False)


def new_photos_loader(
    image_size: int = GConfig.image_size, batch_size: int = EVAL_BATCH, root: str | os.PathLike | None = None
) -> DataLoader:
    """The new-photos split at `root` (default data/new_photos, made first if missing): the
    sample's kind of drawn shapes on real photos that training never sees. It measures whether the
    model copes with new photographs, not with new objects: the real photographs of `real_loader` do."""
    pairs = find_splits(root if root is not None else make_new_photos(), warn=False)["test"]
    return DataLoader(PairedImageDataset(pairs, image_size, keep_empty=True), batch_size=batch_size, shuffle=False)
