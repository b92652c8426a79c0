"""Pictures: one function opens any image a learner may have (EXIF rotation, CMYK, 16-bit, palette,
grayscale) or raises one clear `ImageError` naming the file; one writes PNGs atomically so that a
crash never leaves half a file; the matte of a cut-out, saved with alpha or on a plain background;
and `over`, what a cut-out looks like on a background.
"""

from __future__ import annotations

import errno
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2.functional import pil_to_tensor

from ..errors import ImageError, OutputError
from ..files import atomic_write

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def border_matte(rgb: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Alpha (B, 1, H, W) of pictures (B, 3, H, W) in [0, 1] from each pixel's colour distance to
    the median colour of the picture's one-pixel frame: 0 up to `low`, rising linearly to 1 at
    `high`. The matte of a cut-out saved on a plain background, and the course's trivial baseline."""
    frame = torch.cat([rgb[..., 0, :], rgb[..., -1, :], rgb[..., :, 0], rgb[..., :, -1]], dim=-1)
    colour = frame.median(dim=-1).values[..., None, None]  # (B, 3, 1, 1)
    distance = (rgb - colour).abs().amax(dim=1, keepdim=True)
    return ((distance - low) / (high - low)).clamp(0, 1)


def cutout_alpha(cutout: Image.Image, low: float = 12.0, high: float = 40.0) -> np.ndarray:
    """The matte (H, W) uint8 of a cut-out: its alpha channel when it has one (RGBA), a grey mask
    itself (L, 255: the object), else, for an RGB cut-out saved on a plain background,
    `border_matte` with `low` and `high` on the 0-255 scale, which keeps anti-aliased edges soft."""
    if cutout.mode in ("RGBA", "L"):
        return np.asarray(cutout.getchannel(cutout.mode[-1]))
    rgb = pil_to_tensor(cutout.convert("RGB")).float()[None]  # (1, 3, H, W), 0-255
    return (border_matte(rgb, low, high)[0, 0].numpy() * 255 + 0.5).astype(np.uint8)


def over(cutout: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """RGBA cut-outs (n, 4, H, W) over backgrounds (n, 3, H, W), or over one colour (1, 3, 1, 1):
    alpha x colour + (1 - alpha) x background. What a cut-out looks like where it is used."""
    alpha = cutout[:, 3:]
    return alpha * cutout[:, :3] + (1 - alpha) * background


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def _to_8bit(image: Image.Image) -> Image.Image:
    """16- and 32-bit grayscale scaled to 8 bits (Pillow's convert would clip it to white); a float
    picture with values in [0, 1] (a float TIFF) read on that scale, as `masks.read_matte` reads one."""
    array = np.asarray(image, dtype=np.float64)
    if image.mode == "F" and array.max() <= 1:
        top = 1.0
    else:
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
    return Image.fromarray(np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings changes global state: one thread at a time
_HINT = "replace or delete it, or re-save it as PNG or JPEG"


def _open(path: Path) -> Image.Image:
    """Image.open, with Pillow's decompression-bomb warning raised as an error (only the header is
    read here, under the lock; decoding happens outside it, in parallel)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _decode(path: Path) -> Image.Image:
    """The picture at `path`, fully decoded and turned upright by its EXIF orientation."""
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not a picture; give a picture file (or a folder to the folder export).")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes); {_HINT}.")
    with _open(path) as image:
        image.load()
        return ImageOps.exif_transpose(image)


def decode_image(path: str | os.PathLike) -> Image.Image:
    """The picture at `path` decoded as stored (any mode: a mask's 16-bit values or palette
    indices are kept) and turned upright by its EXIF orientation. Any failure becomes an
    `ImageError` that names the file; the file is only read."""
    path = Path(path)
    try:
        return _decode(path)
    except ImageError:
        raise
    except (FileNotFoundError, NotADirectoryError):
        raise ImageError(f"{path}: no such file; check the path.") from None
    except PermissionError:
        raise ImageError(f"{path}: cannot be read (permission denied); copy it somewhere readable.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{path}: the picture has more pixels than Pillow's safety limit ({Image.MAX_IMAGE_PIXELS:,}); "
            "shrink it first, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path}: not a picture Pillow can read (is it really a {path.suffix} file?); {_HINT}."
        ) from None
    except MemoryError:
        raise ImageError(f"{path}: too large to decode in the memory there is; shrink it first.") from None
    except Exception as exc:  # truncated or corrupt: Pillow raises OSError, SyntaxError, ValueError, struct.error...
        raise ImageError(f"{path}: the picture is damaged or truncated ({exc}); {_HINT}.") from None


def open_image(path: str | os.PathLike, mode: str | None = "RGB") -> Image.Image:
    """`decode_image`, converted to `mode`: "RGB" (transparency flattened onto white), "RGBA", or
    None for whichever of the two the file has. Any failure is an `ImageError` naming the file."""
    image = decode_image(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _to_8bit(image)
    if (image.mode == "P" and "transparency" in image.info) or image.mode in ("LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
    if mode is None:
        mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if image.mode == "RGBA" and mode == "RGB":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert(mode)


def displayed_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of the picture at `path` as shown (EXIF rotation applied), read from its
    header alone; None if it cannot be read (decoding it will say why)."""
    try:
        with _open(Path(path)) as image:
            turned = image.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # stored on its side
            return (image.height, image.width) if turned else image.size
    except Exception:  # any unreadable file: decoding it reports it by name
        return None


def _why_not_written(path: Path, exc: OSError) -> str:
    """What went wrong writing `path` and what to do, for the usual OSErrors."""
    reason = exc.strerror or str(exc)
    if not path.parent.is_dir():
        return f"{path}: cannot write to folder {path.parent} ({reason}); choose another output folder."
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return f"{path}: could not be written, the disk is full ({reason}); free some space or choose another folder."
    if exc.errno == errno.EISDIR or path.is_dir():
        return f"{path}: is a folder; give a file name ending in .png."
    return f"{path}: could not be written ({reason}); choose another output folder."


def save_png_atomic(image: Image.Image, path: str | os.PathLike, compress_level: int = 1) -> Path:
    """Write `image` as a PNG at `path` atomically (`files.atomic_write`): the file is either the
    old one or the whole new one, never half written. Creates the folder."""
    path = Path(path)
    try:
        with atomic_write(path) as handle:
            image.save(handle, format="PNG", compress_level=compress_level)
    except OSError as exc:
        raise OutputError(_why_not_written(path, exc)) from None
    return path
