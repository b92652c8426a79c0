"""Reading and writing pictures safely: one function opens any image a learner may have (EXIF
rotation, CMYK, 16-bit, palette, grayscale) or raises one clear `ImageError` naming the file;
one writes PNGs atomically so that a crash never leaves half a file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageError, OutputError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit grayscale scaled to 8 bits (Pillow's convert would clip it to white)."""
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def open_image(path: str | os.PathLike, mode: str | None = "RGB") -> Image.Image:
    """Decode `path` fully, turn it upright by its EXIF orientation and convert it to `mode`:
    "RGB" (transparency flattened onto white), "RGBA", or None for whichever of the two the file
    has. Any failure becomes an `ImageError` that names the file."""
    path = Path(path)
    hint = "replace or delete it, or re-save it as PNG or JPEG"
    try:
        if path.stat().st_size == 0:
            raise ImageError(f"{path}: the file is empty (0 bytes); {hint}.")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                image = ImageOps.exif_transpose(image)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file; check the path.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{path}: the picture has more pixels than Pillow's safety limit ({Image.MAX_IMAGE_PIXELS:,}); "
            "shrink it first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path}: not a picture Pillow can read (is it really a {path.suffix} file?); {hint}."
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageError(f"{path}: the picture is damaged or truncated ({exc}); {hint}.") from None
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _to_8bit(image)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    if mode is None:
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if image.mode == "RGBA" and mode == "RGB":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert(mode)


def save_png_atomic(image: Image.Image, path: str | os.PathLike, compress_level: int = 1) -> Path:
    """Write `image` as a PNG at `path` via a temporary file and a rename: the file is either the
    old one or the whole new one, never half written. Creates the folder."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputError(
            f"{path}: cannot write to folder {path.parent} ({exc.strerror}); choose another output folder."
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format="PNG", compress_level=compress_level)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(
            f"{path}: could not be written ({exc.strerror or exc}); free some space or choose another folder."
        ) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
