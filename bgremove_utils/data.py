"""Paired images for training: find photo/cut-out pairs by file stem, decode them once into
uint8 tensors in memory, augment both jointly, and serve train/val/test DataLoaders.
"""

from __future__ import annotations

import os
import random
import unicodedata
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors
from torchvision.transforms import RandomResizedCrop, v2

from .download import download_kaggle  # noqa: F401  (part of the data API: data.download_kaggle)
from .errors import ConfigError, DataError, ImageError
from .images import is_image_file, open_image
from .paths import default_sample_dir
from .sample import make_sample, read_manifest

# Usual names of the two folders, compared lower-case with spaces and dashes as underscores.
INPUT_NAMES = (
    "with_bg",
    "bg",
    "with_background",
    "images_with_background",
    "background",
    "original",
    "originals",
    "input",
    "inputs",
    "images",
    "image",
    "photos",
    "raw",
)
TARGET_NAMES = (
    "no_bg",
    "nobg",
    "without_bg",
    "no_background",
    "without_background",
    "images_with_no_background",
    "images_without_background",
    "removed",
    "transparent",
    "cutout",
    "cutouts",
    "output",
    "outputs",
    "target",
    "targets",
    "png",
)


def _normal(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def detect_folders(root: str | os.PathLike) -> tuple[Path, Path]:
    """Find the photo folder and the cut-out folder under `root`: the sample's manifest, else the
    usual names (the Kaggle set's among them), one or two levels down."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; check the path, or run `python -m bgremove_utils make-sample`.")
    manifest = read_manifest(root)
    if manifest:
        return root / manifest["input_dir"], root / manifest["target_dir"]
    folders = [p for p in root.glob("*") if p.is_dir()] + [p for p in root.glob("*/*") if p.is_dir()]
    by_name = {_normal(p.name): p for p in sorted(folders, key=lambda p: len(p.parts), reverse=True)}
    inputs = next((by_name[n] for n in INPUT_NAMES if n in by_name), None)
    targets = next((by_name[n] for n in TARGET_NAMES if n in by_name), None)
    if inputs is None or targets is None or inputs == targets:
        names = ", ".join(sorted(str(p.relative_to(root)) for p in folders)) or "none"
        raise DataError(
            f"{root}: could not tell which folder holds the photos and which the cut-outs "
            f"(folders found: {names}); pass bg_path=... and no_bg_path=... yourself."
        )
    return inputs, targets


def _stem_key(path: Path) -> str:
    """A file's stem as compared for pairing: case and Unicode normal form ignored (macOS writes
    "é" as e + accent, Windows as one letter)."""
    return unicodedata.normalize("NFC", path.stem).casefold()


def find_pairs(
    bg_path: str | os.PathLike, no_bg_path: str | os.PathLike | None = None, warn: bool = True
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pair photos in `bg_path` with cut-outs in `no_bg_path` by file stem (extension, case and
    Unicode form ignored). Returns (pairs, orphans); orphans are files with no partner (or a
    second file of the same stem), reported once in a warning, never an error. With only a root
    folder, the two folders are found by `detect_folders`."""
    if no_bg_path is None:
        bg_path, no_bg_path = detect_folders(bg_path)
    bg_path, no_bg_path = Path(bg_path), Path(no_bg_path)
    for folder in (bg_path, no_bg_path):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder; check the path, or run `python -m bgremove_utils make-sample`.")
    orphans: list[Path] = []

    def by_stem(folder: Path) -> dict[str, Path]:
        files: dict[str, Path] = {}
        for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
            key = _stem_key(path)
            if key in files:
                orphans.append(path)  # a second file of the same stem: which one is meant?
            else:
                files[key] = path
        return files

    inputs, targets = by_stem(bg_path), by_stem(no_bg_path)
    pairs = [(inputs[k], targets[k]) for k in sorted(inputs) if k in targets]
    orphans += [inputs[k] for k in sorted(inputs) if k not in targets]
    orphans += [targets[k] for k in sorted(targets) if k not in inputs]
    if orphans and warn:
        shown = ", ".join(p.name for p in orphans[:5]) + (", ..." if len(orphans) > 5 else "")
        warnings.warn(
            f"{len(orphans)} file(s) have no partner of the same stem and are left out: {shown}", stacklevel=2
        )
    return pairs, orphans


def estimate_alpha(rgb: np.ndarray, low: float = 12.0, high: float = 40.0) -> np.ndarray:
    """Alpha (H, W) in [0, 1] for a cut-out saved as RGB on a plain background.

    The background colour is the median of the one-pixel frame of the picture; a pixel's alpha
    rises linearly from 0 to 1 as its largest channel difference from that colour goes from
    `low` to `high` (0-255 scale), which keeps anti-aliased edges soft."""
    frame = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).astype(np.float32)
    distance = np.abs(rgb.astype(np.float32) - np.median(frame, axis=0)).max(-1)
    return np.clip((distance - low) / (high - low), 0.0, 1.0)


def load_pair(photo: Path, cutout: Path, image_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pair decoded and resized: photo (3, S, S) and cut-out RGBA (4, S, S), both uint8."""
    x = open_image(photo, "RGB").resize((image_size, image_size), Image.BILINEAR)
    target = open_image(cutout, None)
    if target.mode == "RGB":  # a cut-out on a plain background: estimate its matte
        alpha = Image.fromarray((estimate_alpha(np.asarray(target)) * 255 + 0.5).astype(np.uint8))
        target = Image.merge("RGBA", (*target.split(), alpha))
    y = target.resize((image_size, image_size), Image.BILINEAR)
    to_tensor = lambda im: torch.from_numpy(np.array(im)).permute(2, 0, 1).contiguous()  # noqa: E731
    return to_tensor(x), to_tensor(y)


CROP_SCALE, CROP_RATIO = (0.5, 1.0), (0.75, 1.33)  # RandomResizedCrop's area fraction and aspect ratio


def joint_augmentation(image_size: int) -> v2.Transform:
    """The same random flip and crop for photo and cut-out (both wrapped as tv_tensors.Image:
    a Mask would be resized with nearest neighbour and lose the soft matte)."""
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            v2.RandomResizedCrop(image_size, scale=CROP_SCALE, ratio=CROP_RATIO, antialias=True),
        ]
    )


def augment_batch(images: torch.Tensor) -> torch.Tensor:
    """`joint_augmentation` for a whole batch (B, C, S, S) in one call, with its own flip and crop
    for each picture: v2 transforms draw one set of parameters per call, so here torchvision's
    RandomResizedCrop draws each crop and one `grid_sample` resamples them all (bilinear; crops
    are never larger than the picture, so nothing is shrunk and nothing aliases). Channels are
    moved together: stack photo and cut-out along C to keep them aligned."""
    b, _, height, width = images.shape
    boxes = torch.tensor([RandomResizedCrop.get_params(images[0], CROP_SCALE, CROP_RATIO) for _ in range(b)])
    top, left, h, w = boxes.to(images.dtype).unbind(1)  # get_params gives (top, left, height, width)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0).to(images.dtype)
    theta = torch.zeros(b, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w / width * flip, (2 * left + w) / width - 1  # x: crop, then flip
    theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * top + h) / height - 1
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class PairedImageDataset(Dataset):
    """Photo/cut-out pairs decoded once into memory as uint8 tensors of `image_size`.

    Items are (photo (3, S, S), cut-out RGBA (4, S, S)) as floats in [0, 1]. Files that cannot be
    read are skipped, listed in `.skipped` and reported in one warning."""

    def __init__(self, pairs: list[tuple[Path, Path]], image_size: int = 64, augment: bool = False):
        self.pairs, self.image_size = [], image_size
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
        return x.as_subclass(torch.Tensor).float() / 255.0, y.as_subclass(torch.Tensor).float() / 255.0

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Items `indices` at once (a DataLoader asks for a batch this way): the same pictures
        as `self[i]`, augmented by `augment_batch` in one call instead of one call each."""
        both = torch.cat([self.inputs[indices], self.targets[indices]], 1).float() / 255.0  # (B, 7, S, S)
        if self.transform is not None:
            both = augment_batch(both)
        return list(zip(both[:, :3], both[:, 3:]))


class Loaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


def split_pairs(pairs: list[tuple[Path, Path]], root: Path | None, seed: int = 0) -> dict[str, list]:
    """train/val/test: the sample's manifest split when there is one, else a seeded 80/10/10."""
    manifest = read_manifest(root) if root else None
    if manifest:
        where = {stem: name for name, stems in manifest["split"].items() for stem in stems}
        return {name: [p for p in pairs if where.get(p[1].stem) == name] for name in ("train", "val", "test")}
    order = list(pairs)
    random.Random(seed).shuffle(order)
    n_val = n_test = max(1, len(order) // 10)
    return {"train": order[n_val + n_test :], "val": order[:n_val], "test": order[n_val : n_val + n_test]}


def find_splits(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    seed: int = 0,
    warn: bool = True,
) -> dict[str, list[tuple[Path, Path]]]:
    """The train/val/test pairs `make_loaders` serves for the same arguments, found and split
    without decoding a picture (the default sample is made first if it is missing)."""
    if bg_path is None:
        root = Path(data_root) if data_root is not None else default_sample_dir()
        if data_root is None and read_manifest(root) is None:
            make_sample(root)
        pairs, _ = find_pairs(root, warn=warn)
    else:
        root = Path(data_root) if data_root is not None else Path(bg_path).parent
        pairs, _ = find_pairs(bg_path, no_bg_path, warn=warn)
    if len(pairs) < 3:
        raise DataError(f"{bg_path or root}: found {len(pairs)} pair(s); at least 3 are needed (train, val, test).")
    return split_pairs(pairs, root, seed)


def check_batch_size(
    batch_size: int,
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    seed: int = 0,
) -> None:
    """A ConfigError when `batch_size` exceeds the training pairs, found before any is decoded."""
    n_train = len(find_splits(data_root, bg_path, no_bg_path, seed, warn=False)["train"])
    where = bg_path or data_root or default_sample_dir()
    if n_train == 0:
        raise DataError(f"{where}: no pairs in the training split; add pairs or check the manifest's split.")
    if batch_size > n_train:
        raise ConfigError(
            f"batch_size={batch_size}: larger than the {n_train} training pair(s) in {where}; "
            f"use batch_size={n_train} or less, or add pairs."
        )


def make_loaders(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    image_size: int = 64,
    batch_size: int = 16,
    num_workers: int = 0,
    seed: int = 0,
    augment: bool = True,
) -> Loaders:
    """train/val/test DataLoaders over the pairs of `bg_path`/`no_bg_path` (or found under
    `data_root`; by default the course's sample, made first if it is missing). Only the train
    loader shuffles and augments; `test` is what `predict_and_compare` takes."""
    splits = find_splits(data_root, bg_path, no_bg_path, seed)
    make = lambda name, aug: PairedImageDataset(splits[name], image_size, augment=aug)  # noqa: E731
    datasets = {"train": make("train", augment), "val": make("val", False), "test": make("test", False)}
    generator = torch.Generator().manual_seed(seed)
    common = {
        "batch_size": batch_size,
        "num_workers": num_workers,
        "pin_memory": torch.cuda.is_available(),
        "persistent_workers": num_workers > 0,
    }
    return Loaders(
        train=DataLoader(
            datasets["train"],
            shuffle=True,
            generator=generator,
            drop_last=len(datasets["train"]) > batch_size,
            **common,
        ),
        val=DataLoader(datasets["val"], shuffle=False, **common),
        test=DataLoader(datasets["test"], shuffle=False, **common),
    )
