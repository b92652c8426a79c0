"""Photo/cut-out pairs on disk: find the two folders (by a manifest's names or the usual ones), pair
their files by stem, and split the pairs into train/val/test by one rule, all without decoding a
picture.
"""

from __future__ import annotations

import json
import os
import unicodedata
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..paths import default_sample_dir
from .images import is_image_file

INPUT_DIR = "with_bg"  # the course's own folders of photos and of cut-outs, and its manifest
TARGET_DIR = "no_bg"
MANIFEST = "manifest.json"
SPLIT_SEED = 0  # a data set without a manifest is split in this seeded order, whatever the training seed

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


def read_manifest(root: str | os.PathLike) -> dict | None:
    """A folder's manifest (the sample's: arguments, file names, split), or None if there is none."""
    try:
        return json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def split(items: list, seed: int = SPLIT_SEED) -> dict[str, list]:
    """The one split rule: `items` in a seeded random order, the first to train, then a tenth (at
    least one) to val and as many to test. The sample's manifest is written with it."""
    n_train = len(items) - 2 * max(1, round(len(items) / 10))
    order = [items[i] for i in np.random.default_rng([seed, 2**31 - 1]).permutation(len(items))]
    n_val = (len(items) - n_train) // 2
    return {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


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


def split_pairs(pairs: list[tuple[Path, Path]], root: Path | None, seed: int = SPLIT_SEED) -> dict[str, list]:
    """train/val/test: the sample's manifest split when there is one, else `split` (the same for
    every training run, so that no run trains on another's test pictures)."""
    manifest = read_manifest(root) if root else None
    if manifest:
        where = {stem: name for name, stems in manifest["split"].items() for stem in stems}
        return {name: [p for p in pairs if where.get(p[1].stem) == name] for name in ("train", "val", "test")}
    return split(list(pairs), seed)


def find_splits(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    warn: bool = True,
) -> dict[str, list[tuple[Path, Path]]]:
    """The train/val/test pairs of `bg_path`/`no_bg_path`, or of the folders under `data_root`
    (default: the course's sample), found and split without decoding a picture."""
    if bg_path is None:
        root = Path(data_root) if data_root is not None else default_sample_dir()
        pairs, _ = find_pairs(root, warn=warn)
    else:
        root = Path(data_root) if data_root is not None else Path(bg_path).parent
        pairs, _ = find_pairs(bg_path, no_bg_path, warn=warn)
    if len(pairs) < 3:
        raise DataError(f"{bg_path or root}: found {len(pairs)} pair(s); at least 3 are needed (train, val, test).")
    return split_pairs(pairs, root)
