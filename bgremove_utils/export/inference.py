"""Cutting out pictures with a trained generator: `process_and_generate` writes an RGBA PNG the size
of the input (alpha from the network, refined at the photo's resolution; colour from the photo,
un-blended from the old background where the matte is soft); `process_folder` does a whole folder.
The generator is a GModel run by torch, or an exported ONNX file run by onnxruntime: the same path.
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

from ..data.images import IMAGE_EXTENSIONS, is_image_file, open_image, save_png_atomic
from ..errors import BgRemoveError, ImageError, OutputError
from ..models.checkpoint import load_generator
from ..models.networks import GModel
from ..paths import default_checkpoint_dir
from ..settings import BEST_CHECKPOINT, resolve_device
from .onnx import OnnxGenerator
from .refine import soft_colours, upsample_matte

Generator = GModel | OnnxGenerator  # what the export runs: torch's model, or the ONNX file's


@lru_cache(maxsize=4)
def _cached_generator(path: str, mtime: float, device: str) -> Generator:
    if Path(path).suffix.lower() == ".onnx":
        return OnnxGenerator(path)
    return load_generator(path, device)


def get_generator(generator: Generator | str | os.PathLike | None = None, device: str | None = None) -> Generator:
    """A generator as given, or loaded (once, then cached) from a path: a checkpoint, or an ONNX
    file of `export_onnx` (a name ending in .onnx, run by onnxruntime on the CPU whatever
    `device`); None means the course's default, <project>/checkpoints/best.pt."""
    if isinstance(generator, (torch.nn.Module, OnnxGenerator)):
        return generator
    path = Path(generator) if generator is not None else default_checkpoint_dir() / BEST_CHECKPOINT
    mtime = path.stat().st_mtime if path.exists() else 0.0
    return _cached_generator(str(path), mtime, str(resolve_device(device or "auto")))


def _device(generator: Generator) -> torch.device:
    """Where the generator computes: its weights' device, or the CPU for onnxruntime."""
    return generator.device if isinstance(generator, OnnxGenerator) else next(generator.parameters()).device


def _to_tensor(photo: Image.Image, device: torch.device) -> torch.Tensor:
    """RGB picture -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.array(photo)).permute(2, 0, 1)[None].to(device).float() / 255.0


@torch.no_grad()
def _network_matte(generator: Generator, photo: Image.Image, size: int) -> torch.Tensor:
    """The network's alpha (1, 1, S, S) for the photo resized to its size S."""
    x = _to_tensor(photo.resize((size, size), Image.BILINEAR), _device(generator))
    return generator.predict(x)[:, 3:]


@torch.no_grad()
def _full_matte(generator: Generator, photo: Image.Image, refine: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The network's alpha brought to the picture's own size, (1, 1, H, W): with `refine`, refined
    with the picture as the guide (see `refine.upsample_matte`), else upsampled bilinearly; and the
    picture as a tensor (1, 3, H, W) when refining, for its colours, else None (not needed)."""
    alpha_small = _network_matte(generator, photo, generator.config.image_size)
    if not refine:
        size = (photo.height, photo.width)
        return F.interpolate(alpha_small, size=size, mode="bilinear", align_corners=False), None
    full = _to_tensor(photo, alpha_small.device)
    return upsample_matte(full, alpha_small), full


def _cut_out_arrays(generator: Generator, photo: Image.Image, refine: bool) -> tuple[np.ndarray, np.ndarray]:
    """Colours (H, W, 3) and alpha (H, W), uint8, at the picture's own size: the picture's own
    colours, changed only at the soft pixels when refining."""
    alpha, full = _full_matte(generator, photo, refine)
    rgb = np.array(photo)  # (H, W, 3) uint8, a copy
    if full is not None:
        index, colours = soft_colours(full, alpha, generator.config.image_size)
        rgb.reshape(-1, 3)[index.cpu().numpy()] = _to_uint8(colours[None, :, :, None])[:, 0]  # (N, 3)
    return rgb, _to_uint8(alpha)[..., 0]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """(1, C, H, W) in [0, 1] -> (H, W, C) uint8."""
    return x[0].permute(1, 2, 0).mul(255).add_(0.5).clamp_(0, 255).byte().cpu().numpy()


def predict_matte(generator: Generator, photo: Image.Image, refine: bool = True) -> np.ndarray:
    """Alpha (H, W) uint8 for an RGB picture of any size: the network sees it resized to its
    training size; its alpha is brought back to the picture's own size, refined with the picture
    as the guide or, without `refine`, upsampled bilinearly."""
    return _to_uint8(_full_matte(generator, photo, refine)[0])[..., 0]


def cut_out(
    photo: Image.Image,
    generator: Generator | str | os.PathLike | None = None,
    device: str | None = None,
    refine: bool = True,
) -> Image.Image:
    """The RGBA cut-out of a picture in memory, at its own size. With `refine` (the default): the
    network's matte refined with the picture as the guide, so that its edges follow the picture's
    (see `refine.upsample_matte`), and the picture's colours except where the matte is soft and the
    picture's pixels are blended with the old background: there the object's own colour, estimated
    from the colours around (see `refine.soft_colours`). Without: the network's matte
    upsampled bilinearly and the picture's colours everywhere. A picture that has transparency
    already keeps it: the network sees it over white, its alpha is multiplied into the network's
    once, and where it is not opaque the colours are its own (not the blend with white)."""
    model = get_generator(generator, device)
    own = None
    if photo.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in photo.info:  # e.g. a palette's
        own = np.array(photo.convert("RGBA"))  # (H, W, 4): straight colours and their alpha
        photo = Image.alpha_composite(Image.new("RGBA", photo.size, (255, 255, 255, 255)), Image.fromarray(own))
    photo = photo.convert("RGB")
    rgb, alpha = _cut_out_arrays(model, photo, refine)
    if own is not None:
        see_through = own[..., 3] < 255
        rgb[see_through] = own[..., :3][see_through]
        alpha = ((alpha.astype(np.uint16) * own[..., 3] + 127) // 255).astype(np.uint8)
    return Image.merge("RGBA", (*Image.fromarray(rgb).split(), Image.fromarray(alpha, "L")))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _check_png_name(target: Path) -> None:
    """Refuse an output name that does not end in .png: the cut-out is an RGBA PNG, and PNG bytes
    under a .jpg name mislead every program that opens it (JPEG has no transparency at all)."""
    if target.suffix.lower() == ".png":
        return
    why = f"a {target.suffix} name" if target.suffix else "a name without .png"
    if target.suffix.lower() in (".jpg", ".jpeg", ".jpe", ".jfif"):
        why = "JPEG has no transparency"
    raise OutputError(
        f"{target}: the cut-out is an RGBA PNG ({why}); use a name ending in .png, "
        f"e.g. {target.with_suffix('.png').name}, or an existing folder."
    )


def process_and_generate(
    input_image_path: str | os.PathLike,
    output_image_path: str | os.PathLike,
    generator: Generator | str | os.PathLike | None = None,
    device: str | None = None,
    refine: bool = True,
) -> Path:
    """Remove the background of one picture and save it as an RGBA PNG the size of the input
    (as displayed: EXIF rotation applied). Returns the path written.

    `generator` is a GModel, a checkpoint path (default: the course's best checkpoint), or an
    ONNX file of `export_onnx` (or its OnnxGenerator), run by onnxruntime. The
    output is written atomically, its folder created; its name must end in .png, and an existing
    folder (or a path ending in a slash) as output gets `<stem>.png` inside it. It may never be the
    input file itself, and the input is only read. `refine=False`: the plain export, the matte
    upsampled bilinearly and the picture's own colours (see `cut_out`)."""
    source, target = Path(input_image_path), Path(output_image_path)
    if target.is_dir() or str(output_image_path).endswith(("/", os.sep)):
        target = target / f"{source.stem}.png"
    _check_png_name(target)
    if _same_file(source, target):
        raise OutputError(f"{target}: is the input picture itself; choose another output path so the input is kept.")
    photo = open_image(source, None)  # RGB, or RGBA when the picture has transparency
    return save_png_atomic(cut_out(photo, get_generator(generator, device), refine=refine), target)


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
    generator: Generator | str | os.PathLike | None = None,
    device: str | None = None,
    progress: bool = True,
    refine: bool = True,
) -> FolderReport:
    """Cut out every picture of `input_dir` into `output_dir/<stem>.png`, with a progress bar.
    A bad file does not stop the others: it is listed in the report, printed at the end.
    `refine` as in `process_and_generate`."""
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
            report.written.append(process_and_generate(path, target, model, refine=refine))
        except BgRemoveError as exc:  # its file named as in the folder: the report reads the same on any machine
            report.failed.append((path, str(exc).replace(str(path), path.name)))
    if progress or report.failed:
        print(report)
    return report
