"""Where a louder adversarial term shows: the real photographs of a folder's report half on which two
settings' hole errors (|holes of the matte - holes of the truth|, as `evaluate` counts them, mean
over each setting's models: one a random seed) differ most, whichever way, with the truth and the
first model of each setting's matte at the models' size.

    python experiments/gan_holes_figure.py --a /tmp/models/real_z_{0,1,2}.pt --b /tmp/models/adv10_z_{0,1,2}.pt \\
        --labels "--adv-weight 1" "--adv-weight 10" --out docs/images/gan_holes.png
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from front_figure import save_small  # noqa: E402  experiments/, beside this script
from real_pairs import real_loaders  # noqa: E402

from bgremove_utils.evaluation.metrics import hole_count, predict_alpha  # noqa: E402
from bgremove_utils.models.checkpoint import load_generator  # noqa: E402
from bgremove_utils.paths import default_real_val_dir


@torch.no_grad()
def mattes(generator, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(photos, true alphas, predicted alphas) of every picture of `loader`, (N, C, H, W)."""
    photos, truths, preds = [], [], []
    for photo, target in loader:
        photos.append(photo)
        truths.append(target[:, 3:])
        preds.append(predict_alpha(generator, photo))
    return torch.cat(photos), torch.cat(truths), torch.cat(preds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", nargs="+", required=True, help="the first setting's models, one a seed")
    parser.add_argument("--b", nargs="+", required=True, help="the second setting's models")
    parser.add_argument("--labels", nargs=2, required=True)
    parser.add_argument(
        "--real", default=str(default_real_val_dir()), help="real test photographs (default: data/real-val)"
    )
    parser.add_argument("--half", default="report", choices=("choose", "report"))
    parser.add_argument("-n", type=int, default=4, help="how many photographs")
    parser.add_argument("--out", default="docs/images/gan_holes.png")
    args = parser.parse_args()
    arms = [[load_generator(path, device="cpu") for path in paths] for paths in (args.a, args.b)]
    loader = real_loaders(args.real, arms[0][0].config.image_size)[f"{args.half}/all"]
    results = [[mattes(g, loader) for g in arm] for arm in arms]
    photos, truth = results[0][0][0], results[0][0][1]
    true_holes = hole_count(truth)
    holes = [[hole_count(pred) for _, _, pred in arm] for arm in results]
    errors = [np.mean([np.abs(h - true_holes) for h in arm], axis=0) for arm in holes]  # per picture, over seeds
    order = np.argsort(-np.abs(errors[0] - errors[1]), kind="stable")[: args.n]
    print(f"mean hole error: {args.labels[0]} {errors[0].mean():.2f}, {args.labels[1]} {errors[1].mean():.2f}")
    fewer, more = int((errors[1] < errors[0]).sum()), int((errors[1] > errors[0]).sum())
    print(f"{args.labels[1]}: a lower mean hole error on {fewer} photographs, a higher one on {more}, of {len(truth)}")
    for i in order:
        print(f"picture {i}: mean hole error {errors[0][i]:.2f} and {errors[1][i]:.2f}")
    fig, axes = plt.subplots(len(order), 4, figsize=(8.4, 2.4 * len(order)), dpi=72)
    for row, i in zip(np.atleast_2d(axes), order):
        row[0].imshow(photos[i].permute(1, 2, 0).numpy())
        row[0].set_title("photograph", fontsize=9)
        row[1].imshow(truth[i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
        row[1].set_title(f"human mask: {true_holes[i]} holes", fontsize=9)
        for ax, label, arm, h, error in zip(row[2:], args.labels, results, holes, errors):
            ax.imshow(arm[0][2][i, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{label}: {h[0][i]} holes\n(error over seeds {error[i]:.1f})", fontsize=9)
        for ax in row:
            ax.axis("off")
    save_small(fig, args.out)


if __name__ == "__main__":
    main()
