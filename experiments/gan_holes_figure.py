"""Where the adversarial term shows: the real test photographs (of the report half, those the course
may publish) on which two settings' hole errors (|holes of the matte - holes of the truth|, as
`evaluate` counts them, mean over each setting's models: one a random seed) differ most, either way,
with the truth and the first model of each setting's matte at the models' size
(`course.viz.compare_holes`).

    python experiments/gan_holes_figure.py --a /tmp/models/real_train_objects_nogan_{0,1,2}.pt \\
        --b /tmp/models/real_train_objects_{0,1,2}.pt --labels "no GAN" "GAN" --out docs/images/gan_holes.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
from front_figure import save_small  # noqa: E402  experiments/, beside this script

from bgremove_utils.course.viz import compare_holes  # noqa: E402
from bgremove_utils.data.real import real_loader  # noqa: E402
from bgremove_utils.models.checkpoint import load_generator  # noqa: E402
from bgremove_utils.paths import default_real_val_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="+", required=True, help="the first setting's models, one a seed")
    parser.add_argument("--b", nargs="+", required=True, help="the second setting's models")
    parser.add_argument("--labels", nargs=2, required=True)
    parser.add_argument("--real", default=str(default_real_val_dir()), help="test photographs (default: data/real-val)")
    parser.add_argument("--half", default="report", choices=("choose", "report"))
    parser.add_argument("-n", type=int, default=4, help="how many photographs")
    parser.add_argument("--out", default="docs/images/gan_holes.png")
    args = parser.parse_args()
    arms = {
        label: [load_generator(path, device="cpu") for path in paths]
        for label, paths in zip(args.labels, (args.a, args.b))
    }
    size = next(iter(arms.values()))[0].config.image_size
    shown = real_loader(args.real, size, args.half, shareable=True).dataset
    fig, errors = compare_holes(shown, arms, args.n)
    print(
        ", ".join(f"{label}: mean hole error {error:.2f}" for label, error in errors.items())
        + f" ({len(shown)} photographs)"
    )
    save_small(fig, args.out)


if __name__ == "__main__":
    main()
