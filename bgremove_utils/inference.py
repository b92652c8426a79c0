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
from .errors import BgRemoveError, OutputError
from .images import is_image_file, open_image, save_png_atomic
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
def predict_matte(generator: GModel, photo: Image.Image, image_size: int | None = None) -> np.ndarray:
    """Alpha (H, W) uint8 for an RGB picture of any size: the network sees it resized to its
    training size, and its alpha is upsampled bilinearly back to the picture's own size."""
    size = image_size or getattr(generator, "image_size", 64)
    device = next(generator.parameters()).device
    small = photo.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.array(small)).permute(2, 0, 1)[None].to(device).float() / 255.0
    was_training = generator.training
    generator.eval()
    alpha = generator(x)[:, 3:].float()  # (1, 1, S, S)
    generator.train(was_training)
    alpha = F.interpolate(alpha, size=(photo.height, photo.width), mode="bilinear", align_corners=False)
    return (alpha[0, 0].clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()


def cut_out(
    photo: Image.Image, generator: GModel | str | os.PathLike | None = None, device: str | None = None
) -> Image.Image:
    """The RGBA cut-out of a picture in memory: its own colours, the network's alpha."""
    model = get_generator(generator, device)
    photo = photo.convert("RGB")
    alpha = Image.fromarray(predict_matte(model, photo), "L")
    return Image.merge("RGBA", (*photo.split(), alpha))


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
    """Remove the background of one picture and save it as an RGBA PNG the size of the input.

    `generator` is a GModel or a checkpoint path (default: the course's best checkpoint). The
    output is written atomically, its folder created; it may never be the input file itself."""
    source, target = Path(input_image_path), Path(output_image_path)
    if _same_file(source, target):
        raise OutputError(f"{target}: is the input picture itself; choose another output path so the input is kept.")
    model = get_generator(generator, device)
    return save_png_atomic(cut_out(open_image(source, "RGB"), model), target)


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
    model = get_generator(generator, device)
    report = FolderReport()
    files = sorted(p for p in input_dir.iterdir() if is_image_file(p))
    inputs = {p.resolve() for p in files}
    for path in tqdm(files, desc="cutting out", unit="img", disable=not progress):
        target = output_dir / f"{path.stem}.png"
        try:
            if target.resolve() in inputs:
                raise OutputError(
                    f"{target}: would replace an input picture; choose an output folder apart from the inputs."
                )
            report.written.append(process_and_generate(path, target, model))
        except BgRemoveError as exc:
            report.failed.append((path, str(exc)))
    if progress or report.failed:
        print(report)
    return report
