"""Masks as people save them, each read into one 0-255 matte: an RGBA cut-out, an RGB cut-out on a
plain background, a grey mask (8 or 16 bits, 0/1 or class indices, saved as L, RGB or JPEG), a
palette mask. And what keeps a pair out of training, said by name: a mask of another aspect ratio
than its photo (rotated or cropped), or a mask that is empty or full.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .images import cutout_alpha, decode_image, displayed_size

OBJECT = 128  # alpha from which a pixel counts as object (0.5, where IoU thresholds)
VOID = 255  # a palette mask's index for "unsure" (PASCAL VOC's outline band), read as alpha 0.5
FEW_VALUES = 32  # a grey mask of at most this many values, all under OBJECT, holds class indices, not a matte
JPEG_NOISE = 24  # a JPEG mask's values this close to 0 or 255 are compression noise (quality 75): 0 or 255
ASPECT_TOLERANCE = 0.02  # a mask resized from its photo keeps the photo's aspect ratio within rounding
GREY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


@dataclass
class Matte:
    """A target file read as a matte: `alpha` (H, W) uint8, 255 the object; `kind`, how the file
    was read; `values`, the lowest and highest value the file stores, on its own scale (0-1,
    0-255, 0-65535, palette indices); `colours`, a cut-out's own RGB (None for a mask: training
    takes the photo's colours)."""

    path: Path
    alpha: np.ndarray
    kind: str
    values: tuple[float, float]
    colours: Image.Image | None = None

    @property
    def object_share(self) -> float:
        """The share of the picture that is object (alpha >= 128)."""
        return float((self.alpha >= OBJECT).mean())

    @property
    def problem(self) -> str | None:
        """Why this matte must not be trained on, naming the file: it is empty (no object pixel)
        or full (no background pixel). None when it can be."""
        share = self.object_share
        if 0 < share < 1:
            return None
        what = "empty: no pixel is object" if share == 0 else "full: no pixel is background"
        low, high = self.values
        return (
            f"{self.path}: the mask is {what} (read as: {self.kind}, values {low:g}-{high:g}); "
            "the pair is left out: fix the mask or remove the pair."
        )


def _object(where: np.ndarray) -> np.ndarray:
    return where.astype(np.uint8) * 255


def _range(values: np.ndarray) -> tuple[float, float]:
    return float(values.min()), float(values.max())


def _kind(name: str, rgb: bool, jpeg: bool) -> str:
    tags = [tag for tag, on in (("saved as RGB", rgb), ("JPEG", jpeg)) if on]
    return f"{name} ({', '.join(tags)})" if tags else name


def _grey(path: Path, values: np.ndarray, rgb: bool, jpeg: bool) -> Matte:
    """A grey mask's matte. 0/1 values, or a few small class indices, are an object at full
    strength wherever they are not 0; otherwise the values are alpha on the file's scale (8 bits,
    or 16 when a value passes 255), with a JPEG's noise next to 0 and 255 taken out."""
    values = values.astype(np.uint8) if values.dtype == bool else values
    low, top = _range(values)
    if values.dtype.kind == "f":  # a float TIFF: alpha in [0, 1] (or already 0-255)
        alpha = np.clip(values * (255.0 if top <= 1 else 1.0) + 0.5, 0, 255).astype(np.uint8)
        return Matte(path, alpha, _kind("float mask", rgb, jpeg), (low, top))
    if top <= 1:
        return Matte(path, _object(values > 0), _kind("0/1 mask", rgb, jpeg), (low, top))
    if top < OBJECT and not jpeg and len(np.unique(values)) <= FEW_VALUES:
        return Matte(path, _object(values > 0), _kind("class-index mask", rgb, jpeg), (low, top))
    if top < 255 and not jpeg and set(np.unique(values).tolist()) == {0, top}:  # 0 and 128, 0 and 200: not soft
        return Matte(path, _object(values > 0), _kind(f"two-valued mask (0 and {top:g})", rgb, jpeg), (low, top))
    deep = values.dtype.itemsize > 1 and top > 255  # 8-bit values stored in 16 bits stay 8-bit
    alpha = values * (255 / 65535) if deep else values.astype(np.float64)
    if jpeg:
        alpha = (alpha - JPEG_NOISE) * 255 / (255 - 2 * JPEG_NOISE)
    alpha = np.clip(alpha + 0.5, 0, 255).astype(np.uint8)
    return Matte(path, alpha, _kind("16-bit grey mask" if deep else "grey mask", rgb, jpeg), (low, top))


def _grey_mask_in_rgb(rgb: np.ndarray, jpeg: bool) -> bool:
    """Whether an RGB picture is a grey mask saved as RGB: grey everywhere (within a JPEG's noise),
    nearly all of it at its two extremes (or a few small class indices: 0/1, 0-3), and not bright all
    round its border (black line art on white is a cut-out on a plain background). "Near" an extreme
    is within a JPEG's noise, or a quarter of the range when that is smaller: else every value of a
    0/1 mask lies near both."""
    if (rgb.max(-1).astype(np.int16) - rgb.min(-1)).max() > (JPEG_NOISE if jpeg else 0):
        return False
    grey = rgb[..., 1]
    low, high = int(grey.min()), int(grey.max())
    near = min(JPEG_NOISE, (high - low) // 4)
    classes = high < OBJECT and not jpeg and len(np.unique(grey)) <= FEW_VALUES
    extremes = 1.0 if classes else ((grey <= low + near) | (grey >= high - near)).mean()
    frame = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return bool(high > low and extremes >= 0.9 and (frame >= high - near).mean() < 0.9)


def read_matte(path: str | os.PathLike) -> Matte:
    """The matte of the target file at `path`, read by what the file holds: a palette without
    transparency is a mask (index 0 background, any other index object); an alpha channel that is
    not opaque everywhere is a cut-out's matte; grey values are a grey mask (0/1 and class
    indices at full strength); an RGB picture is a grey mask saved as RGB, or else a cut-out on a
    plain background (`images.cutout_alpha`). An unreadable file is an `ImageError` naming it."""
    path = Path(path)
    image = decode_image(path)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if image.mode == "P" and "transparency" not in image.info:
        index = np.asarray(image)  # index 255: PASCAL VOC's "void", the unsure band along outlines: alpha 0.5
        alpha = np.where(index == VOID, OBJECT, _object(index > 0)).astype(np.uint8)
        kind = "palette mask" + (" (255: unsure, 0.5)" if (index == VOID).any() else "")
        return Matte(path, alpha, kind, _range(index))
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La", "P") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if alpha.min() < 255:  # an alpha channel that says something
            return Matte(path, alpha, "RGBA cut-out", _range(alpha), rgba.convert("RGB"))
        image = rgba.convert("RGB")  # opaque everywhere: its colours tell
    if image.mode in GREY_MODES:
        return _grey(path, np.asarray(image), rgb=False, jpeg=jpeg)
    rgb = image.convert("RGB")
    array = np.asarray(rgb)
    if _grey_mask_in_rgb(array, jpeg):
        return _grey(path, array[..., 1], rgb=True, jpeg=jpeg)
    return Matte(path, cutout_alpha(rgb), "RGB cut-out on a plain background", _range(array), rgb)


def aspect_problem(photo: str | os.PathLike, mask: str | os.PathLike) -> str | None:
    """Why `mask` cannot be laid over `photo`: another aspect ratio (a rotated or cropped mask),
    read from the two files' headers alone. None when it fits: the same aspect at another size is
    fine (it is resized with the photo). Unreadable files pass here: decoding them says why."""
    sizes = displayed_size(photo), displayed_size(mask)
    if None in sizes or sizes[0] == sizes[1]:
        return None
    (pw, ph), (mw, mh) = sizes
    slack = ASPECT_TOLERANCE + 1 / min(pw, ph, mw, mh)  # and one pixel of rounding
    if abs((pw * mh) / (ph * mw) - 1) <= slack:
        return None
    return (
        f"{mask}: {mw}x{mh}, another aspect ratio than its photo {Path(photo).name} ({pw}x{ph}): rotated or "
        "cropped? The pair is left out; save the mask at the photo's size (or its aspect ratio)."
    )
