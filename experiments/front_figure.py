"""The README's first picture: real test photographs that no training saw (the report half's frames
of DAVIS validation videos, which the course may publish) cut out at their own size by the model
trained offline on what ships with the course and by the one trained on the course's full real set.

    python experiments/front_figure.py OFFLINE_MODEL.pt FULL_MODEL.pt [--out docs/images/front.png]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bgremove_utils.data.real import real_loader  # noqa: E402
from bgremove_utils.export.inference import cut_out  # noqa: E402
from bgremove_utils.models.checkpoint import load_generator  # noqa: E402
from bgremove_utils.paths import default_real_val_dir  # noqa: E402


def on_grey(cutout: Image.Image) -> np.ndarray:
    """The cut-out pasted on a light grey, as a user would see it placed on a new background."""
    grey = Image.new("RGBA", cutout.size, (200, 200, 200, 255))
    return np.asarray(Image.alpha_composite(grey, cutout).convert("RGB"))


def save_small(fig: plt.Figure, path: str) -> None:
    """`fig` as a PNG of 256 colours: small enough to keep in git."""
    fig.tight_layout()
    fig.canvas.draw()
    picture = Image.fromarray(np.asarray(fig.canvas.buffer_rgba())).convert("RGB")
    picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("offline_model")
    parser.add_argument("full_model")
    parser.add_argument("--out", default="docs/images/front.png")
    parser.add_argument("--photos", nargs="+", help="file stems of the test photographs (default: four videos)")
    args = parser.parse_args()
    models = {
        "trained offline": load_generator(args.offline_model),
        "on the full real set": load_generator(args.full_model),
    }
    pairs = real_loader(default_real_val_dir(), half="report", shareable=True).dataset.pairs
    first = {}  # each video's first frame of the report half
    for photo, _ in pairs:
        first.setdefault(photo.stem.rsplit("_", 1)[0], photo)
    chosen = [p for p, _ in pairs if p.stem in args.photos] if args.photos else [first[v] for v in FRONT_VIDEOS]
    photos = [Image.open(photo).convert("RGB") for photo in chosen]
    fig, axes = plt.subplots(len(photos), 3, figsize=(9.6, 2.0 * len(photos)), dpi=72, squeeze=False)
    for picture, row in zip(photos, axes):
        row[0].imshow(picture)
        row[0].set_title("real test photograph", fontsize=9)
        for ax, (label, model) in zip(row[1:], models.items()):
            ax.imshow(on_grey(cut_out(picture, model)))
            ax.set_title(f"cut out, {label}", fontsize=9)
        for ax in row:
            ax.axis("off")
    save_small(fig, args.out)


FRONT_VIDEOS = ("davis_camel", "davis_dog", "davis_kite-surf", "davis_soapbox")  # an animal each, a sport, a crowd


if __name__ == "__main__":
    main()
