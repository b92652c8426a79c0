"""The export's matte at each real photograph's own resolution, refined (the package's default) or
upsampled bilinearly, against the human-made mask: the measurements behind docs/export.md's real
photographs table. Each (checkpoint, export) is an entry of the JSON file, rewritten after each.

    python experiments/refine_real.py /tmp/models/real_0.pt /tmp/models/real_1.pt

Scores per half of the folder (data/real.py) and per source (the stem's prefix), pooled IoU of
alpha >= 0.5 and the per-picture SAD and Grad, as `evaluate` computes them, at the photo's size.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from real_pairs import groups  # experiments/, beside this script

from bgremove_utils.data.images import decode_image
from bgremove_utils.data.masks import read_matte
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.evaluation.metrics import gradient_error, sad_error
from bgremove_utils.export.inference import predict_matte
from bgremove_utils.models.checkpoint import load_generator
from bgremove_utils.paths import default_real_val_dir


def score(checkpoint: Path, real_root: str, refine: bool) -> dict:
    """{"report/all": {...}, "report/davis": {...}, ...}: the metrics of the exported mattes."""
    generator = load_generator(checkpoint, device="cpu")
    pairs, _ = find_pairs(real_root, warn=False)
    sums: dict[str, dict[str, float]] = {}
    for photo_path, mask_path in pairs:
        photo = decode_image(photo_path).convert("RGB")
        pred = torch.from_numpy(predict_matte(generator, photo, refine=refine)).float().div(255)[None, None]
        true = torch.from_numpy(np.array(read_matte(mask_path).alpha)).float().div(255)[None, None]
        found = {
            "inter": ((pred >= 0.5) & (true >= 0.5)).sum().item(),
            "union": ((pred >= 0.5) | (true >= 0.5)).sum().item(),
            "sad": sad_error(pred, true).item(),
            "grad": gradient_error(pred, true).item(),
            "n": 1,
        }
        for key in groups(photo_path.stem):
            total = sums.setdefault(key, dict.fromkeys(found, 0.0))
            for name, value in found.items():
                total[name] += value
    return {
        key: {
            "iou": round(t["inter"] / t["union"], 4),
            "sad": round(t["sad"] / t["n"], 2),
            "grad": round(t["grad"] / t["n"], 2),
            "n": int(t["n"]),
        }
        for key, t in sorted(sums.items())
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument(
        "--real", default=str(default_real_val_dir()), help="real test photographs (default: data/real-val)"
    )
    parser.add_argument("--out", default="docs/results/refine_real.json")
    args = parser.parse_args()
    out = Path(args.out)
    for checkpoint in args.checkpoints:
        for refine in (False, True):
            entry = {"model": checkpoint.stem, "refine": refine, "scores": score(checkpoint, args.real, refine)}
            runs = json.loads(out.read_text()) if out.is_file() else []
            runs = [r for r in runs if (r["model"], r["refine"]) != (entry["model"], refine)] + [entry]
            out.write_text(json.dumps(runs, indent=1) + "\n")
            report = entry["scores"]["report/all"]
            print(f"{checkpoint.stem}, refine={refine}: " + ", ".join(f"{k} {v}" for k, v in report.items()))


if __name__ == "__main__":
    main()
