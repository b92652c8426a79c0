"""A web page on this computer that cuts out photos with the course's model (Gradio): drop a photo,
or pick one of the course's real test photographs, and see the cut-out over a checkerboard and over
a colour of your choice, its mask, and download the RGBA PNG that `process_and_generate` writes.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.course import shipped_photos
from ..errors import BgRemoveError
from ..export.inference import Generator, get_generator, process_and_generate
from ..export.onnx import OnnxGenerator, import_extra
from .viz import over_checkerboard

N_EXAMPLES = 8  # the course's real test photographs offered on the page, one per video
BACKGROUND = "#1a66e6"  # the colour the cut-out is first pasted on: the notebooks' blue
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]  # nothing fetched from a font server


def background_rgb(colour: str | None) -> np.ndarray:
    """A colour picker's value ("#rrggbb", "#rgb" or "rgb(a)(r, g, b, ...)") as RGB in [0, 1], (3,)."""
    colour = (colour or BACKGROUND).strip()
    if colour.startswith("#"):
        digits = colour[1:] if len(colour) > 4 else "".join(c * 2 for c in colour[1:4])
        return np.array([int(digits[i : i + 2], 16) for i in (0, 2, 4)], np.float32) / 255
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)[:3]]
    return np.array(numbers if len(numbers) == 3 else background_rgb(BACKGROUND) * 255, np.float32) / 255


def views(cutout: str | os.PathLike, colour: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the page shows of an RGBA PNG, each (H, W[, 3]) uint8: the cut-out over a checkerboard,
    pasted on `colour`, and its mask (alpha as grey levels)."""
    rgba = np.asarray(Image.open(cutout).convert("RGBA"), np.float32) / 255  # (H, W, 4)
    rgb, alpha = rgba[..., :3], rgba[..., 3:]
    pasted = rgb * alpha + background_rgb(colour) * (1 - alpha)

    def to_uint8(x: np.ndarray) -> np.ndarray:
        return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)

    return to_uint8(over_checkerboard(rgb, alpha[..., 0])), to_uint8(pasted), to_uint8(alpha[..., 0])


def _describe(model: Generator, generator: Any) -> str:
    """Which generator the page runs, and with what, in a sentence."""
    c = model.config
    if isinstance(model, OnnxGenerator):
        source = f"`{model.path}`, run by onnxruntime"
    elif generator is None or isinstance(generator, (str, os.PathLike)):
        source = f"`{generator or 'checkpoints/best.pt'}`, run by torch"
    else:
        source = "the notebook's, run by torch"
    return f"The generator of {source} ({c.image_size} px, depth {c.depth})."


def build_app(generator: Generator | str | os.PathLike | None = None, examples: list[Path] | None = None):
    """The page, a gradio.Blocks not yet launched, for a generator (a GModel, a checkpoint or an ONNX
    file; default checkpoints/best.pt) and example photos (default: some of the course's real test
    photographs). Cut-outs are written into a temporary folder of their own, never beside a photo."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before Gradio is imported: no usage statistics
    gr = import_extra("gradio", "The web page")
    model = get_generator(generator)
    examples = examples if examples is not None else _one_per_video(shipped_photos())
    folder = Path(tempfile.mkdtemp(prefix="bgremove_app_"))

    def cut(upload: str | None, colour: str | None):
        """(checkerboard, colour, mask, PNG to download, the PNG again for recolouring, message)."""
        if not upload:
            return None, None, None, None, None, ""
        source = Path(upload)
        try:
            png = process_and_generate(source, folder / secrets.token_hex(8) / f"{source.stem}.png", model)
        except BgRemoveError as exc:  # the message names Gradio's copy of the file: name the user's file instead
            return None, None, None, None, None, f"⚠ {str(exc).replace(str(source), source.name)}"
        width, height = Image.open(png).size
        return (*views(png, colour), str(png), str(png), f"Cut out **{source.name}**: {width} x {height} pixels.")

    def recolour(png: str | None, colour: str | None):
        return views(png, colour)[1] if png else None

    with gr.Blocks(title="Cut out a photo", analytics_enabled=False) as page:
        gr.Markdown(f"## Cut out a photo\n{_describe(model, generator)} Drop a photo below, or pick an example.")
        with gr.Row():
            photo = gr.File(label="Your photo (drop it here, or click)", type="filepath", elem_id="photo")
            colour = gr.ColorPicker(BACKGROUND, label="A background colour of your choice", elem_id="colour")
        gr.Examples([[str(path)] for path in examples], inputs=[photo], label="The course's real test photographs")
        message = gr.Markdown(elem_id="message")
        shown = {"format": "png", "interactive": False, "buttons": ["fullscreen"]}  # PNG: shown as computed
        with gr.Row():
            checker = gr.Image(label="Over a checkerboard", elem_id="checker", **shown)
            pasted = gr.Image(label="Over your colour", elem_id="pasted", **shown)
            mask = gr.Image(label="The mask (alpha)", elem_id="mask", **shown)
        download = gr.DownloadButton("Download the RGBA PNG", elem_id="download")
        written = gr.State()
        photo.change(cut, [photo, colour], [checker, pasted, mask, download, written, message])
        colour.change(recolour, [written, colour], [pasted])
    return page


def _one_per_video(photos: list[Path]) -> list[Path]:
    """The first frame of each video (DAVIS stems are davis_<video>_<frame>), at most N_EXAMPLES."""
    firsts = {}
    for path in photos:
        firsts.setdefault(path.stem.rsplit("_", 1)[0], path)
    return list(firsts.values())[:N_EXAMPLES]


def launch(page, port: int | None = None, block: bool = True) -> str:
    """Start the page on this computer only (127.0.0.1; in a notebook, shown inline, Colab too):
    no public link, no usage statistics, the system's fonts. Says its address and returns it;
    `block`: until Ctrl-C, else at once (`page.close()` stops it)."""
    gr = import_extra("gradio", "The web page")
    theme = gr.themes.Default(font=SYSTEM_FONTS, font_mono=["ui-monospace", "monospace"])
    _, url, _ = page.launch(
        server_name="127.0.0.1",
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        theme=theme,
        ssr_mode=False,
        mcp_server=False,
        footer_links=[],
    )
    print(f"The page: {url} (on this computer only{'; Ctrl-C stops it' if block else ''})")
    if block:
        page.block_thread()  # Gradio's wait, which closes the server on Ctrl-C
    return url


def serve(generator: Generator | str | os.PathLike | None = None, port: int | None = None) -> None:
    """`python -m bgremove_utils app`: the page, until Ctrl-C."""
    page = build_app(generator)
    try:
        launch(page, port)
    finally:
        page.close(verbose=False)
