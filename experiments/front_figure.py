"""The README's first picture: a test picture of the course's sample cut out by the model trained on
the sample, and real photographs (shipped by matplotlib and scikit-image, never trained on) cut out
by that model and by the same profile trained on a folder of real pairs.

    python experiments/front_figure.py SAMPLE_MODEL.pt REAL_PAIRS_MODEL.pt [--out docs/images/front.png]
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bgremove_utils.data.pairs import find_splits  # noqa: E402
from bgremove_utils.data.photos import photo as course_photo  # noqa: E402
from bgremove_utils.data.sample import make_sample  # noqa: E402
from bgremove_utils.export.inference import cut_out  # noqa: E402
from bgremove_utils.models.checkpoint import load_generator  # noqa: E402


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
    parser.add_argument("sample_model")
    parser.add_argument("real_model")
    parser.add_argument("--out", default="docs/images/front.png")
    parser.add_argument("--test-index", type=int, default=3, help="which test picture of the sample")
    args = parser.parse_args()
    on_sample, on_real = load_generator(args.sample_model), load_generator(args.real_model)
    test_photo = Image.open(find_splits(make_sample())["test"][args.test_index][0]).convert("RGB")
    rows = [("a test picture of the sample", test_photo, [("trained on the sample", on_sample)])]
    for name in ("grace_hopper.jpg", "motorcycle"):
        picture = Image.fromarray(course_photo(name))
        rows.append(
            (
                f"a real photograph ({name.split('.')[0]})",
                picture,
                [("trained on the sample", on_sample), ("trained on real pairs", on_real)],
            )
        )
    fig, axes = plt.subplots(len(rows), 3, figsize=(8.4, 2.9 * len(rows)), dpi=72)
    for (title, picture, models), row in zip(rows, axes):
        row[0].imshow(picture)
        row[0].set_title(title, fontsize=9)
        for ax, (label, model) in zip(row[1:], models):
            ax.imshow(on_grey(cut_out(picture, model)))
            ax.set_title(f"cut out, {label}", fontsize=9)
        for ax in row:
            ax.axis("off")
    save_small(fig, args.out)


if __name__ == "__main__":
    main()
