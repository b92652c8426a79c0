"""Photo/cut-out pairs on disk: find the two folders (by a manifest's names or the usual ones), pair
their files by stem (exactly, else without a mask suffix such as `_mask`), leave out a mask of
another aspect ratio than its photo, and split the pairs into train/val/test by a hash of each
pair's stem (or of its video's name), all without decoding a picture. Several folders, joined by
`os.pathsep` ("data/real-train:data/real-objects"), are one data set: each split as it would be alone.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import unicodedata
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..paths import default_sample_dir
from .images import is_image_file
from .masks import aspect_problem

INPUT_DIR = "with_bg"  # the course's own folders of photos and of cut-outs, and its manifest
TARGET_DIR = "no_bg"
MANIFEST = "manifest.json"  # the course's sample: its arguments, files and split
FRAMES = "manifest.csv"  # a folder's list of pairs; its `sequence` column groups a video's frames
SPLIT_SEED = 0  # the seed of the sample's own split, written in its manifest
SPLIT_BUCKETS = {"test": range(0, 10), "val": range(10, 20)}  # of a hash's 100 buckets; the rest train

# Usual names of the two folders, compared lower-case with spaces and dashes as underscores.
# fmt: off
INPUT_NAMES = (
    "with_bg", "bg", "with_background", "images_with_background", "background", "original", "originals",
    "input", "inputs", "images", "image", "imgs", "jpegimages", "photos", "pictures", "rgb", "raw",
)
TARGET_NAMES = (
    "no_bg", "nobg", "without_bg", "no_background", "without_background", "images_with_no_background",
    "images_without_background", "removed", "transparent", "cutout", "cutouts", "output", "outputs",
    "target", "targets", "png", "masks", "mask", "segmentationclass", "segmentation", "figure_ground",
    "annotations", "annotation", "labels", "label", "gt", "ground_truth", "groundtruth", "alpha", "mattes", "matte",
)
# Endings of a mask's stem that its photo's stem lacks (img0.jpg, img0_mask.png), compared lower-case;
# tried only when no file has the exact stem.
MASK_SUFFIXES = (
    "_mask", "-mask", " mask", "_matte", "-matte", "_gt", "-gt", "_alpha", "-alpha", "_label", "_segmentation",
)
# fmt: on
EXACT = "exact stem"  # the first pairing rule, as `Pairing.rules` counts it


def read_manifest(root: str | os.PathLike) -> dict | None:
    """A folder's course manifest (the sample's: arguments, folder names, split), or None if there is
    none. A `manifest.json` of another kind (many downloaded data sets have one) is not ours: None."""
    try:
        manifest = json.loads((Path(root) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ours = isinstance(manifest, dict) and {"input_dir", "target_dir", "split"} <= manifest.keys()
    return manifest if ours else None


def read_sequences(root: str | os.PathLike) -> dict[str, str]:
    """{stem: sequence} from a folder's `manifest.csv` where it has a `sequence` column (the course's
    video frames): frames of one video are alike, so they are split together. Empty without one."""
    try:
        with open(Path(root) / FRAMES, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error):
        return {}
    return {row["stem"]: row["sequence"] for row in rows if row.get("stem") and row.get("sequence")}


def split(items: list, seed: int = SPLIT_SEED) -> dict[str, list]:
    """The sample's split, written in its manifest when it is made: `items` in a seeded random order,
    the first to train, then a tenth (at least one) to val and as many to test."""
    n_train = len(items) - 2 * max(1, round(len(items) / 10))
    order = [items[i] for i in np.random.default_rng([seed, 2**31 - 1]).permutation(len(items))]
    n_val = (len(items) - n_train) // 2
    return {"train": order[:n_train], "val": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


def _normal(name: str) -> str:
    return name.lower().replace(" ", "_").replace("-", "_")


def _is_train(folder: Path) -> bool:
    return _normal(folder.name) in ("train", "training", "trainval")


def detect_folders(root: str | os.PathLike) -> tuple[Path, Path]:
    """Find the photo folder and the cut-out (or mask) folder under `root`: the sample's manifest,
    else the usual names (the Kaggle set's, `images` and `masks`, ...), one or two levels down; two
    folders side by side first (`train/images` with `train/masks`, not with `val/masks`): those of
    `root` itself, then those of a `train` folder (not `test/`), then any others."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder; check the path, or run `python -m bgremove_utils make-sample`.")
    manifest = read_manifest(root)
    if manifest:
        return root / manifest["input_dir"], root / manifest["target_dir"]
    folders = [p for p in sorted(root.glob("*")) if p.is_dir()] + [p for p in sorted(root.glob("*/*")) if p.is_dir()]
    inputs = [p for name in INPUT_NAMES for p in folders if _normal(p.name) == name]
    targets = [p for name in TARGET_NAMES for p in folders if _normal(p.name) == name]
    side_by_side = [(i, t) for i in inputs for t in targets if i.parent == t.parent]
    side_by_side.sort(key=lambda pair: 0 if pair[0].parent == root else 1 if _is_train(pair[0].parent) else 2)
    if side_by_side or (inputs and targets):
        return side_by_side[0] if side_by_side else (inputs[0], targets[0])
    names = ", ".join(sorted(str(p.relative_to(root)) for p in folders)) or "none"
    raise DataError(
        f"{root}: could not tell which folder holds the photos and which the cut-outs "
        f"(folders found: {names}); name them: --bg-path and --no-bg-path (bg_path=..., no_bg_path=... in Python)."
    )


def _stem_key(path: Path) -> str:
    """A file's stem as compared for pairing: case and Unicode normal form ignored (macOS writes
    "é" as e + accent, Windows as one letter)."""
    return unicodedata.normalize("NFC", path.stem).casefold()


def _drop_suffix(key: str) -> tuple[str, str | None]:
    """A mask's stem without its mask suffix, and the suffix (None if it has none)."""
    suffix = next((s for s in sorted(MASK_SUFFIXES, key=len, reverse=True) if key.endswith(s)), None)
    return (key[: -len(suffix)], suffix) if suffix else (key, None)


@dataclass
class Pairing:
    """What `match_pairs` found: the pairs, how many each rule paired (`EXACT`, or a mask suffix
    dropped), and each file left out with why."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    rules: Counter = field(default_factory=Counter)
    left_out: list[tuple[Path, str]] = field(default_factory=list)

    def rules_line(self) -> str:
        """How many pairs, by which rule: "paired 1,393: 1,000 by exact stem, 393 by dropping a mask
        suffix (_mask 393)"."""
        exact = self.rules[EXACT]
        line = f"paired {len(self.pairs):,}: {exact:,} by exact stem"
        dropped = ", ".join(f"{suffix} {n:,}" for suffix, n in self.rules.most_common() if suffix != EXACT)
        return line + (f", {len(self.pairs) - exact:,} by dropping a mask suffix ({dropped})" if dropped else "")

    def left_out_line(self, shown: int = 5) -> str:
        """The files left out, the first `shown` named with why."""
        named = "; ".join(f"{path.name} ({why.removeprefix(f'{path}: ')})" for path, why in self.left_out[:shown])
        more = f"; and {len(self.left_out) - shown} more" if len(self.left_out) > shown else ""
        return f"{len(self.left_out)} file(s) left out, with no partner or none that fits: {named}{more}"


def _by_stem(folder: Path, left_out: list[tuple[Path, str]]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if is_image_file(p)):
        key = _stem_key(path)
        if key in files:
            left_out.append((path, f"the same stem as {files[key].name}: which one is meant?"))
        else:
            files[key] = path
    return files


def match_pairs(bg_path: str | os.PathLike, no_bg_path: str | os.PathLike) -> Pairing:
    """Pair each photo of `bg_path` with the cut-out or mask of `no_bg_path` of the same stem
    (extension, case and Unicode form ignored), else with the one whose stem is the photo's and a
    mask suffix (`img0.jpg`, `img0_mask.png`); a mask of another aspect ratio than its photo is
    left out (`masks.aspect_problem`). Reads the files' headers only."""
    for folder in (bg_path, no_bg_path):
        if not Path(folder).is_dir():
            raise DataError(f"{folder}: no such folder; check the path, or run `python -m bgremove_utils make-sample`.")
    result = Pairing()
    photos, masks = _by_stem(Path(bg_path), result.left_out), _by_stem(Path(no_bg_path), result.left_out)
    found = {key: (photos.pop(key), masks.pop(key), EXACT) for key in sorted(photos.keys() & masks.keys())}
    for key in sorted(masks):
        base, suffix = _drop_suffix(key)
        if suffix and base in photos:
            found[base] = (photos.pop(base), masks.pop(key), suffix)
        elif suffix and base in found:
            why = f"a second mask for {found[base][0].name}, which is paired with {found[base][1].name}"
            result.left_out.append((masks.pop(key), why))
    result.left_out += [(path, "no cut-out or mask of the same stem") for path in photos.values()]
    result.left_out += [(path, "no photo of the same stem") for path in masks.values()]
    for key in sorted(found):
        photo, mask, rule = found[key]
        problem = aspect_problem(photo, mask)
        if problem:
            result.left_out.append((mask, problem))
        else:
            result.pairs.append((photo, mask))
            result.rules[rule] += 1
    return result


def find_pairs(
    bg_path: str | os.PathLike, no_bg_path: str | os.PathLike | None = None, warn: bool = True
) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """Pair photos in `bg_path` with cut-outs or masks in `no_bg_path` (`match_pairs`). Returns
    (pairs, orphans); orphans are the files left out (no partner, a second file of the same stem,
    a mask of another aspect ratio), said once in a warning with why, never an error; a pairing
    by mask suffix is said in it too. With only a root folder, the two folders are found by
    `detect_folders`."""
    if no_bg_path is None:
        bg_path, no_bg_path = detect_folders(bg_path)
    pairing = match_pairs(bg_path, no_bg_path)
    said = [pairing.rules_line()] if set(pairing.rules) - {EXACT} else []  # news only when a suffix paired
    said += [pairing.left_out_line()] if pairing.left_out else []
    if warn and said:
        warnings.warn("; ".join(said), stacklevel=2)
    return pairing.pairs, [path for path, _ in pairing.left_out]


def _bucket(key: str) -> int:
    """A stable hash of `key` in 0..99: the same on every machine, whatever else is in the folder."""
    return int.from_bytes(hashlib.sha1(key.encode()).digest()[:4], "big") % 100


def hash_split(pairs: list[tuple[Path, Path]], sequences: dict[str, str] | None = None) -> dict[str, list]:
    """train/val/test by a hash of each pair's photo stem, or of its video (`sequences`: {stem:
    sequence}), so that frames of one video stay in one split: about a tenth to val and a tenth to
    test. A pair's split depends on its own name alone: a pair added to the folder moves no other
    between splits, so a run resumed on a grown folder never trains on its test pictures. A small
    folder whose val or test would be empty gives it the training group nearest to that bucket."""
    sequences = sequences or {}
    groups: dict[str, list] = {}
    for pair in pairs:
        groups.setdefault(sequences.get(pair[0].stem, pair[0].stem), []).append(pair)
    where = {key: next((n for n, b in SPLIT_BUCKETS.items() if _bucket(key) in b), "train") for key in groups}
    for name, buckets in SPLIT_BUCKETS.items():  # a small folder: the training group nearest the empty bucket
        train = [key for key in groups if where[key] == "train"]
        if name not in where.values() and len(train) > 1:
            where[min(train, key=lambda key: (abs(_bucket(key) - buckets.start), key))] = name
    return {
        name: [pair for key in groups if where[key] == name for pair in groups[key]]
        for name in ("train", "val", "test")
    }


def split_pairs(pairs: list[tuple[Path, Path]], root: Path | None) -> dict[str, list]:
    """train/val/test: the sample's manifest split when there is one, else `hash_split` (grouping
    a video's frames by the folder's `manifest.csv`): the same for every run, so that no run
    trains on another's test pictures."""
    manifest = read_manifest(root) if root else None
    if manifest:
        where = {stem: name for name, stems in manifest["split"].items() for stem in stems}
        return {name: [p for p in pairs if where.get(p[1].stem) == name] for name in ("train", "val", "test")}
    return hash_split(list(pairs), read_sequences(root) if root else None)


def data_roots(data_root: str | os.PathLike) -> list[Path]:
    """The folders a `data_root` names: one, or several joined by `os.pathsep` (":" here, ";" on Windows)."""
    return [Path(part) for part in str(data_root).split(os.pathsep) if part]


def find_splits(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
    warn: bool = True,
) -> dict[str, list[tuple[Path, Path]]]:
    """The train/val/test pairs of `bg_path`/`no_bg_path`, or of the folders under `data_root`
    (several joined by `os.pathsep`, each split as alone; default: the course's sample), found and
    split without decoding a picture."""
    if bg_path is not None:
        root = Path(data_root) if data_root is not None else Path(bg_path).parent
        found = [(root, find_pairs(bg_path, no_bg_path, warn=warn)[0])]
    else:
        roots = data_roots(data_root) if data_root is not None else [default_sample_dir()]
        found = [(root, find_pairs(root, warn=warn)[0]) for root in roots]
    splits: dict[str, list] = {"train": [], "val": [], "test": []}
    for root, pairs in found:
        if len(pairs) < 3:
            raise DataError(f"{bg_path or root}: found {len(pairs)} pair(s); at least 3 are needed (train, val, test).")
        for name, part in split_pairs(pairs, root).items():
            splits[name] += part
    return splits
