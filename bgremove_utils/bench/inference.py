"""Inference: seconds per megapixel of `process_and_generate`, where the time goes, and the same
export with the generator run by onnxruntime instead of torch."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
from PIL import Image

from ..data.images import open_image
from ..errors import ExtraError
from ..export.inference import cut_out, predict_matte, process_and_generate
from ..export.onnx import OnnxGenerator, export_onnx
from ..models.networks import GModel
from .common import Row, seconds_per_call


def _photo(photo: Path, width: int, height: int, tmp: Path) -> Path:
    """The bench's photo resized to width x height, saved as a JPEG (as a camera's) in `tmp`."""
    path = tmp / f"photo_{width}x{height}.jpg"
    if not path.is_file():
        Image.open(photo).convert("RGB").resize((width, height), Image.BICUBIC).save(path, quality=92)
    return path


def _split(generator: GModel, path: Path, n: int, tmp: Path) -> dict[str, float]:
    """Mean seconds of each part of process_and_generate on one picture."""
    image = open_image(path)
    device = next(generator.parameters()).device
    size = generator.config.image_size
    rgba, x = cut_out(image, generator), torch.rand(1, 3, size, size, device=device)
    with torch.no_grad():
        network = seconds_per_call(partial(generator, x), n)
    return {
        "decode": seconds_per_call(partial(open_image, path), n),
        "network": network,
        "resize + network + bilinear matte": seconds_per_call(
            partial(predict_matte, generator, image, refine=False), n
        ),
        "resize + network + refined matte": seconds_per_call(partial(predict_matte, generator, image), n),
        "cut_out, plain (bilinear + merge)": seconds_per_call(partial(cut_out, image, generator, refine=False), n),
        "cut_out (refined + colours + merge)": seconds_per_call(partial(cut_out, image, generator), n),
        "png encode (level 1)": seconds_per_call(partial(rgba.save, tmp / "e.png", compress_level=1), n),
    }


def bench_inference(generator: GModel, photo: Path, sizes, n: int, tmp: Path) -> tuple[list[Row], dict]:
    """Seconds per megapixel of process_and_generate vs the same cut-out saved as a tutorial does
    (PNG at Pillow's default level); and where the time goes."""
    rows, split = [], {}
    for width, height in sizes:
        path, mp = _photo(photo, width, height, tmp), width * height / 1e6
        ours = seconds_per_call(partial(process_and_generate, path, tmp / "ours.png", generator), n)
        plain = seconds_per_call(lambda p=path: cut_out(open_image(p), generator).save(tmp / "plain.png"), n)
        parts = split[f"{width}x{height}"] = {"total": ours, **_split(generator, path, max(1, n // 2), tmp)}
        refining = parts["cut_out (refined + colours + merge)"] - parts["cut_out, plain (bilinear + merge)"]
        note = (
            f"plain: PNG at Pillow's default level; encoding is {parts['png encode (level 1)'] / ours:.0%} of ours, "
            f"refinement at full resolution {refining / ours:.0%}"
        )
        met = ours / mp <= 0.25
        rows.append(Row(f"inference {width}x{height}", "s/MP", ours / mp, plain / mp, False, "<= 0.25", met, note))
    return rows, split


def bench_onnx(generator: GModel, photo: Path, sizes, n: int, tmp: Path) -> list[Row]:
    """Seconds per megapixel of process_and_generate with G exported to ONNX and run by onnxruntime
    vs the same export with G run by torch, one after the other on the same photo and threads
    (ratio > 1: onnxruntime is faster). Without the app extra: rows that say how to install it."""
    try:
        onnx = OnnxGenerator(export_onnx(generator, tmp / "generator.onnx"))
    except ExtraError as exc:
        return [Row(f"onnxruntime {w}x{h}", "s/MP", None, None, False, note=f"not measured: {exc}") for w, h in sizes]
    rows = []
    for width, height in sizes:
        path, mp = _photo(photo, width, height, tmp), width * height / 1e6
        ours = seconds_per_call(partial(process_and_generate, path, tmp / "onnx.png", onnx), n)
        plain = seconds_per_call(partial(process_and_generate, path, tmp / "torch.png", generator), n)
        note = "plain: the same export with G run by torch; everything but G is the same code"
        rows.append(Row(f"onnxruntime {width}x{height}", "s/MP", ours / mp, plain / mp, False, note=note))
    size = generator.config.image_size
    x = torch.rand(1, 3, size, size)  # what the export gives G: one photo at its size, and its mirror image
    ours, plain = (
        seconds_per_call(partial(onnx.predict, x), 10 * n),
        seconds_per_call(partial(generator.predict, x), 10 * n),
    )
    note = "G alone, its mirror image too (predict), as the export calls it; plain: torch"
    rows.append(Row(f"onnxruntime G at {size} px", "ms", 1e3 * ours, 1e3 * plain, False, note=note))
    return rows
