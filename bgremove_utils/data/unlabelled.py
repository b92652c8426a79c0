"""Photos without mattes, for the discriminator to judge G's cut-outs of them: a learner's own
folder of photos, or the course's own train-split photos. No matte is needed to be judged, which
is what only an adversarial term can use (Hung et al. 2018; AdaptSegNet, Tsai et al. 2018).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .backgrounds import Backgrounds
from .images import is_image_file, open_image
from .photos import load_photos


def unlabelled_photos(source: str, image_size: int) -> Backgrounds:
    """Photos without mattes, served as random crops of `image_size` (flipped, recoloured,
    sometimes out of focus) by `.draw(n)`: those of a folder, or, for "builtin", the course's own
    train-split photos (photos.py). G's cut-outs of them are for D to judge: no matte needed."""
    if source == "builtin":
        photos = load_photos("train")
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise ConfigError(f"unlabelled={source!r}: no such folder; give a folder of photos, or 'builtin'.")
        files = sorted(p for p in folder.iterdir() if is_image_file(p))
        if not files:
            raise DataError(f"{folder}: no pictures in it to use as unlabelled photos.")
        photos = tuple(np.asarray(open_image(p, "RGB")) for p in files)
    return Backgrounds(photos, image_size, photo_share=1.0)
