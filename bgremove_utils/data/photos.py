"""Real photographs that ship inside the course's dependencies (scikit-image's `data`, matplotlib's
sample data), listed in one place: backgrounds and object textures for the sample, offline.

Each photo serves one split only: `train` photos make the sample the model learns from (and its
validation and test splits); `new_photos` are kept for the new-photos split, whose pictures
training never sees, so that it measures how the model does beyond what it was shown.
"""

from __future__ import annotations

from functools import cache

import matplotlib.cbook
import numpy as np
import skimage.data
from PIL import Image

# name: (where it comes from, which split it serves, what it shows)
PHOTOS = {
    "astronaut": ("skimage", "train", "a portrait in a space suit before a flag and a rocket"),
    "chelsea": ("skimage", "train", "a cat's face, fur close up"),
    "rocket": ("skimage", "train", "a rocket on its launch pad at night"),
    "immunohistochemistry": ("skimage", "train", "stained tissue under a microscope"),
    "hubble_deep_field": ("skimage", "train", "galaxies on black"),
    "retina": ("skimage", "train", "the back of an eye"),
    "brick": ("skimage", "train", "a brick wall (grey)"),
    "grass": ("skimage", "train", "grass (grey)"),
    "camera": ("skimage", "train", "a cameraman on a lawn (grey)"),
    "moon": ("skimage", "train", "the moon's surface (grey)"),
    "coins": ("skimage", "train", "coins on a table (grey)"),
    "page": ("skimage", "train", "a printed page (grey)"),
    "coffee": ("skimage", "new_photos", "a cup of coffee on a wooden table"),
    "motorcycle": ("skimage", "new_photos", "a motorcycle in a workshop"),
    "grace_hopper.jpg": ("matplotlib", "new_photos", "a portrait before a flag"),
    "gravel": ("skimage", "new_photos", "gravel (grey)"),
    "clock": ("skimage", "new_photos", "a clock on a shelf (grey)"),
}
SPLITS = ("train", "new_photos")


def _read(name: str, source: str) -> np.ndarray:
    if source == "matplotlib":
        with Image.open(matplotlib.cbook.get_sample_data(name, asfileobj=False)) as image:
            return np.asarray(image.convert("RGB"))
    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]  # the left picture of a stereo pair
    picture = getattr(skimage.data, name)()
    return np.repeat(picture[..., None], 3, axis=-1) if picture.ndim == 2 else picture[..., :3]


@cache
def load_photos(split: str = "train") -> tuple[np.ndarray, ...]:
    """The photos of `split` as (H, W, 3) uint8 arrays, in the order of PHOTOS; read once."""
    if split not in SPLITS:
        raise ValueError(f"split={split!r}: use one of {SPLITS}")
    return tuple(photo(name) for name, (_, use, _) in PHOTOS.items() if use == split)


@cache
def photo(name: str) -> np.ndarray:
    """One photo of PHOTOS by its name, (H, W, 3) uint8: `photo("coffee")`."""
    if name not in PHOTOS:
        raise ValueError(f"{name!r} is not one of the course's photos: {', '.join(PHOTOS)}")
    return _read(name, PHOTOS[name][0])


@cache
def horse_silhouette() -> np.ndarray:
    """scikit-image's horse, a real animal's silhouette: (H, W) float32, 1 inside, 0 outside."""
    return (~skimage.data.horse()).astype(np.float32)  # stored as a black horse on white


@cache
def real_cutouts() -> tuple[np.ndarray, ...]:
    """Real RGBA cut-outs shipped by the dependencies, (H, W, 4) uint8: matplotlib's present and
    scikit-image's logo. Kept for the new-photos split."""
    with Image.open(matplotlib.cbook.get_sample_data("Minduka_Present_Blue_Pack.png", asfileobj=False)) as image:
        present = np.asarray(image.convert("RGBA"))
    return present, skimage.data.logo()
