"""Real photographs with human-made masks, for measurement only (the course's are in data/real-val):
a folder of photos and masks (an L mask or an RGBA cut-out per stem) split by a hash of each stem
into a *choose* half, on which settings may be compared, and a *report* half, which only reports,
so that its numbers are not tuned to. Training never sees them.
"""

from __future__ import annotations

import hashlib
import os

from torch.utils.data import DataLoader

from ..errors import ConfigError, DataError
from ..settings import EVAL_BATCH, GConfig
from . import course
from .dataset import PairedImageDataset
from .pairs import find_pairs
from .stats import source_of

HALVES = ("choose", "report", "all")


def real_half(stem: str) -> str:
    """Which half a picture belongs to, by its file stem alone (a stable hash: the same whatever the
    listing order or machine): "choose" or "report"."""
    return HALVES[hashlib.sha1(stem.encode()).digest()[0] % 2]


def real_loader(
    root: str | os.PathLike,
    image_size: int = GConfig.image_size,
    half: str = "all",
    batch_size: int = EVAL_BATCH,
    shareable: bool = False,
    source: str | None = None,
) -> DataLoader:
    """The real photographs under `root` with their masks (the two folders found as for training
    pairs), the `half` of them `real_half` names ("all": every one), as a loader that
    `evaluation.metrics.evaluate` scores. `shareable`: only those the course may show in what it
    publishes (`course.shareable`), for figures. `source`: only that kind of picture (`stats.source_of`:
    "portrait", "davis", "horse", ...), to score each kind apart."""
    if half not in HALVES:
        raise ConfigError(f"half={half!r}: use one of {', '.join(HALVES)}")
    pairs, _ = find_pairs(root, warn=False)
    pairs = [pair for pair in pairs if half == "all" or real_half(pair[0].stem) == half]
    pairs = course.shareable(pairs) if shareable else pairs
    pairs = [pair for pair in pairs if source is None or source_of(pair[0]) == source]
    if not pairs:
        raise DataError(f"{root}: no photo with a mask found (half {half!r}, source {source or 'any'}).")
    return DataLoader(PairedImageDataset(pairs, image_size, keep_empty=True), batch_size=batch_size, shuffle=False)
