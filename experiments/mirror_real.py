"""Kept models scored on the real photographs with G's prediction alone and averaged with its mirror
image's (`GModel.predict`'s `mirror`, the package's default): the measurements behind
docs/real-photos.md's mirror table. Each (checkpoint, mirror) is an entry of the JSON file.

    python experiments/mirror_real.py /tmp/models/adv10_z_0.pt /tmp/models/adv10_z_1.pt

Scores per half of the folder (data/real.py) and per source, as experiments/real_pairs.py's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from real_pairs import KEYS, Unmirrored, real_loaders  # experiments/, beside this script

from bgremove_utils.evaluation.metrics import evaluate
from bgremove_utils.models.checkpoint import load_generator
from bgremove_utils.paths import default_real_val_dir


def score(checkpoint: Path, real_root: str, mirror: bool) -> dict:
    generator = load_generator(checkpoint, device="cpu")
    model = generator if mirror else Unmirrored(generator)
    out = {}
    for name, loader in real_loaders(real_root, generator.config.image_size).items():
        result = evaluate(model, loader, baseline=False)["model"]
        out[name] = {k: round(result[k], 4) for k in KEYS} | {"n": len(loader.dataset)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument(
        "--real", default=str(default_real_val_dir()), help="real test photographs (default: data/real-val)"
    )
    parser.add_argument("--out", default="docs/results/mirror_real.json")
    args = parser.parse_args()
    out = Path(args.out)
    for checkpoint in args.checkpoints:
        for mirror in (False, True):
            entry = {"model": checkpoint.stem, "mirror": mirror, "scores": score(checkpoint, args.real, mirror)}
            runs = json.loads(out.read_text()) if out.is_file() else []
            runs = [r for r in runs if (r["model"], r["mirror"]) != (entry["model"], mirror)] + [entry]
            out.write_text(json.dumps(runs, indent=1) + "\n")
            print(
                f"{checkpoint.stem}, mirror={mirror}: "
                + ", ".join(f"{k} {v['iou']}" for k, v in entry["scores"].items())
            )


if __name__ == "__main__":
    main()
