"""A folder of pairs checked before training on it: the two folders, the pairs and the rule that
paired them, each file left out and why, how the masks were read (kinds, value ranges), the sizes,
how much of each picture is object, and the split. Training leaves out the same files: both go
through `pairs.match_pairs` and `masks.read_matte`.
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..paths import default_sample_dir, project_root
from .images import decode_image
from .masks import read_matte
from .pairs import Pairing, detect_folders, match_pairs, read_manifest, read_sequences, split_pairs

LISTED = 12  # files left out named one by one; the rest are counted


@dataclass
class PairRead:
    """What decoding one pair told: sizes (width, height), how the mask was read, the share of the
    picture that is object; or `problem`, why the pair cannot be trained on."""

    photo_size: tuple[int, int] = (0, 0)
    mask_size: tuple[int, int] = (0, 0)
    kind: str = ""
    values: tuple[float, float] = (0.0, 0.0)
    object_share: float = 0.0
    problem: str | None = None


def read_pair(pair: tuple[Path, Path]) -> PairRead:
    """Decode a pair as training does (`dataset.load_pair`) and say what it holds."""
    photo, mask = pair
    try:
        size = decode_image(photo).size
        matte = read_matte(mask)
    except ImageError as exc:
        return PairRead(problem=str(exc))
    height, width = matte.alpha.shape
    return PairRead(size, (width, height), matte.kind, matte.values, matte.object_share, matte.problem)


@dataclass
class DataReport:
    """What `inspect_data` found in a folder of pairs; `str(report)` is what a learner reads."""

    root: Path
    inputs: Path
    targets: Path
    found_by: str
    pairing: Pairing
    reads: dict[tuple[Path, Path], PairRead]
    splits: dict[str, list[tuple[Path, Path]]] | None  # None: too few pairs to split

    @property
    def usable(self) -> list[tuple[Path, Path]]:
        """The pairs training keeps."""
        return [pair for pair, read in self.reads.items() if read.problem is None]

    @property
    def left_out(self) -> list[tuple[Path, str]]:
        """Every file left out, with why: at pairing (no partner, another aspect ratio), then when
        decoded (unreadable, a mask empty or full)."""
        unusable = [(pair[1], read.problem) for pair, read in self.reads.items() if read.problem]
        return self.pairing.left_out + unusable

    def __str__(self) -> str:
        usable = [read for read in self.reads.values() if read.problem is None]
        rows = [
            ("photos", f"{_under(self.inputs, self.root)}/ (found by {self.found_by})"),
            ("cut-outs", f"{_under(self.targets, self.root)}/"),
            ("pairs", self.pairing.rules_line()),
            ("left out", f"{len(self.left_out):,} file(s), listed below" if self.left_out else "none"),
            *_masks_rows(usable),
            ("split", self._split_line()),
        ]
        lines = [f"Data in {_under(self.root.absolute(), project_root())}"]  # data/sample, not /home/.../data/sample
        lines += [f"  {name:10} {text}" for name, text in rows]
        if self.left_out:
            lines.append(f"Left out ({len(self.left_out):,}):")
            lines += [f"  {path.name}: {why.removeprefix(f'{path}: ')}" for path, why in self.left_out[:LISTED]]
            lines += [f"  ... and {len(self.left_out) - LISTED:,} more"] if len(self.left_out) > LISTED else []
        return "\n".join(lines)

    def _split_line(self) -> str:
        if self.splits is None:
            return "too few pairs to split (train, val and test need 3 at least)"
        how = "the manifest's" if read_manifest(self.root) else "by a hash of each name: a pair added moves no other"
        how += "; a video's frames together" if read_sequences(self.root) else ""
        counts = [
            f"{name} {sum(self.reads[p].problem is None for p in pairs):,}" for name, pairs in self.splits.items()
        ]
        return f"{', '.join(counts)} pairs to use ({how})"


def _masks_rows(reads: list[PairRead]) -> list[tuple[str, str]]:
    """The rows about the pairs training keeps: mask kinds and values, sizes, object share."""
    if not reads:
        return [("masks", "no pair to train on")]
    kinds = Counter(read.kind for read in reads)
    mask_rows = []
    for kind, n in kinds.most_common():
        values = [read.values for read in reads if read.kind == kind]
        low, high = min(v[0] for v in values), max(v[1] for v in values)
        mask_rows.append(("" if mask_rows else "masks", f"{kind}: {n:,}, values {low:g}-{high:g}"))
    photo_sizes = Counter(read.photo_size for read in reads)
    if len(photo_sizes) == 1:
        sizes = f"every photo {_size(next(iter(photo_sizes)))}"
    else:
        by_area = sorted(photo_sizes, key=lambda size: size[0] * size[1])
        common = ", ".join(f"{_size(size)} ({n:,})" for size, n in photo_sizes.most_common(3))
        sizes = f"{len(photo_sizes):,} photo sizes, {_size(by_area[0])} to {_size(by_area[-1])}; most common {common}"
    other = sum(read.mask_size != read.photo_size for read in reads)
    same = "every mask at its photo's size"
    resized = f"{other:,} mask(s) at another size of the same aspect ratio (resized alike)" if other else same
    share = np.array([read.object_share for read in reads])
    low, median, high = np.percentile(share, [5, 50, 95])
    return [
        *mask_rows,
        ("sizes", sizes),
        ("", resized),
        ("object", f"{median:.0%} of a picture (median); 90% of the pictures between {low:.0%} and {high:.0%}"),
    ]


def _under(folder: Path, root: Path) -> str:
    return str(folder.relative_to(root) if folder.is_relative_to(root) else folder)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def inspect_data(
    data_root: str | os.PathLike | None = None,
    bg_path: str | os.PathLike | None = None,
    no_bg_path: str | os.PathLike | None = None,
) -> DataReport:
    """Check the pairs under `data_root` (its two folders found as training finds them; default:
    the course's sample), or of `bg_path` and `no_bg_path`: pair them, decode every pair once as
    training would, and split them. Nothing is written; print the result to read it."""
    if bg_path is None:
        root = Path(data_root) if data_root is not None else default_sample_dir()
        inputs, targets = detect_folders(root)
        found_by = "the manifest" if read_manifest(root) else "its usual name"
    else:  # as `pairs.find_splits`: a photo folder given alone is searched for the two folders
        root = Path(data_root) if data_root is not None else Path(bg_path).parent
        inputs, targets = (Path(bg_path), Path(no_bg_path)) if no_bg_path else detect_folders(bg_path)
        found_by = "its name given" if no_bg_path else "its usual name"
    pairing = match_pairs(inputs, targets)
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:  # Pillow decodes without the GIL
        reads = dict(zip(pairing.pairs, pool.map(read_pair, pairing.pairs)))
    splits = split_pairs(pairing.pairs, root) if len(pairing.pairs) >= 3 else None
    return DataReport(root, inputs, targets, found_by, pairing, reads, splits)
