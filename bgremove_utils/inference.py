"""Cutting out pictures with a trained generator: `process_and_generate` writes an RGBA PNG the size
of the input (alpha from the network, colour from the photo); `process_folder` does a whole folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from .checkpoint import load_generator
from .config import resolve_device
from .errors import BgRemoveError, ImageError, OutputError
from .images import IMAGE_EXTENSIONS, is_image_file, open_image, save_png_atomic
from .models import GModel
from .paths import default_checkpoint_dir


@lru_cache(maxsize=4)
def _cached_generator(path: str, mtime: float, device: str) -> GModel:
    return load_generator(path, device)


def get_generator(generator: GModel | str | os.PathLike | None = None, device: str | None = None) -> GModel:
    """A GModel as given, or loaded (once, then cached) from a checkpoint path; None means the
    course's default, <project>/checkpoints/best.pt."""
    if isinstance(generator, torch.nn.Module):
        return generator
    path = Path(generator) if generator is not None else default_checkpoint_dir() / "best.pt"
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _cached_generator(str(path), mtime, str(resolve_device(device or "auto")))


@torch.no_grad()
def predict_matte(generator: GModel, photo: Image.Image) -> np.ndarray:
    """Alpha (H, W) uint8 for an RGB picture of any size: the network sees it resized to its
    training size, and its alpha is upsampled bilinearly back to the picture's own size."""
    size = generator.config.image_size
    device = next(generator.parameters()).device
    small = photo.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].to(device).float() / 255.0
    alpha = generator.predict(x)[:, 3:]  # (1, 1, S, S)
    alpha = F.interpolate(alpha, size=(photo.height, photo.width), mode="bilinear", align_corners=False)
    return (alpha[0, 0].clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()


def cut_out(
    photo: Image.Image, generator: GModel | str | os.PathLike | None = None, device: str | None = None
) -> Image.Image:
    """The RGBA cut-out of a picture in memory: its own colours, the network's alpha. A picture
    that has transparency already keeps it (the network sees it over white, and its alpha is
    multiplied into the network's)."""
    model = get_generator(generator, device)
    own_alpha = None
    if photo.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in photo.info:  # e.g. a palette's
        photo = photo.convert("RGBA")
        own_alpha = photo.getchannel("A")
        photo = Image.alpha_composite(Image.new("RGBA", photo.size, (255, 255, 255, 255)), photo)
    photo = photo.convert("RGB")
    alpha = predict_matte(model, photo)
    if own_alpha is not None:
        alpha = ((alpha.astype(np.uint16) * np.asarray(own_alpha) + 127) // 255).astype(np.uint8)
    return Image.merge("RGBA", (*photo.split(), Image.fromarray(alpha, "L")))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def process_and_generate(
    input_image_path: str | os.PathLike,
    output_image_path: str | os.PathLike,
    generator: GModel | str | os.PathLike | None = None,
    device: str | None = None,
) -> Path:
    """Remove the background of one picture and save it as an RGBA PNG the size of the input
    (as displayed: EXIF rotation applied). Returns the path written.

    `generator` is a GModel or a checkpoint path (default: the course's best checkpoint). The
    output is written atomically, its folder created; an existing folder as output gets
    `<stem>.png` inside it. It may never be the input file itself, and the input is only read."""
    source, target = Path(input_image_path), Path(output_image_path)
    if target.is_dir():
        target = target / f"{source.stem}.png"
    if _same_file(source, target):
        raise OutputError(f"{target}: is the input picture itself; choose another output path so the input is kept.")
    photo = open_image(source, None)  # RGB, or RGBA when the picture has transparency
    return save_png_atomic(cut_out(photo, get_generator(generator, device)), target)


@dataclass
class FolderReport:
    """What `process_folder` did: the PNGs it wrote and the files it could not process, with why."""

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.written)} cut-out(s) written, {len(self.failed)} file(s) failed"]
        lines += [f"  - {message}" for _, message in self.failed]
        return "\n".join(lines)


def process_folder(
    input_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    generator: GModel | str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
) -> FolderReport:
    """Cut out every picture of `input_dir` into `output_dir/<stem>.png`, with a progress bar.
    A bad file does not stop the others: it is listed in the report, printed at the end."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    if not input_dir.is_dir():
        raise OutputError(f"{input_dir}: no such folder of pictures; check the path.")
    files = sorted(p for p in input_dir.iterdir() if is_image_file(p))
    if not files:
        raise ImageError(
            f"{input_dir}: no pictures in this folder (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}); "
            "check the path, or convert the pictures to PNG or JPEG."
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir}: is a file, not a folder; choose another output folder.")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or exc
        raise OutputError(f"{output_dir}: cannot be made ({why}); choose another output folder.") from None
    model = get_generator(generator, device)
    report = FolderReport()
    inputs = {p.resolve() for p in files}
    for path in tqdm(files, desc="cutting out", unit="img", disable=not progress):
        target = output_dir / f"{path.stem}.png"
        try:
            if target.resolve() in inputs:
                raise OutputError(
                    f"{target}: would replace an input picture; choose an output folder apart from the inputs."
                )
            if target in report.written:
                raise OutputError(
                    f"{target}: already written from another picture named {path.stem}; rename one of them."
                )
            report.written.append(process_and_generate(path, target, model))
        except BgRemoveError as exc:
            report.failed.append((path, str(exc)))
    if progress or report.failed:
        print(report)
    return report
