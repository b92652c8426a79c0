"""Kept models scored as a user meets them: each real test photograph cut out by
`process_and_generate` at its own size (refined, mirror-averaged: the export's defaults), its alpha
at 0.5 against the human-made mask, the IoU of each picture, then the mean over the pictures of
each source and of each half (per picture, where `evaluate` pools the pixels of a split).

    python experiments/photo_scores.py /tmp/models/offline_objects_sample_0.pt --out docs/results/photo_scores.json

Each checkpoint is an entry of the JSON file (by its file stem), rewritten after each.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bgremove_utils.data.masks import read_matte
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.real import real_half
from bgremove_utils.export.inference import process_and_generate
from bgremove_utils.models.checkpoint import load_generator
from bgremove_utils.paths import default_real_val_dir


def picture_iou(cutout: Path, mask: Path) -> float:
    """IoU of the cut-out's alpha >= 0.5 with the mask's object (alpha >= 0.5); 1 when both are empty."""
    pred = np.asarray(Image.open(cutout))[..., 3] >= 128
    true = read_matte(mask).alpha >= 128
    union = (pred | true).sum()
    return float((pred & true).sum() / union) if union else 1.0


def score(checkpoint: Path, real_root: Path) -> dict:
    """{"all": mean IoU, "davis": ..., "report/all": ..., "report/davis": ..., "n": {...}} of one model."""
    generator = load_generator(checkpoint, device="cpu")
    found: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for photo, mask in find_pairs(real_root, warn=False)[0]:
            cutout = process_and_generate(photo, Path(tmp) / f"{photo.stem}.png", generator)
            iou, source = picture_iou(cutout, mask), photo.stem.split("_")[0]
            for key in ("all", source, f"{real_half(photo.stem)}/all", f"{real_half(photo.stem)}/{source}"):
                found.setdefault(key, []).append(iou)
    return {key: round(float(np.mean(values)), 4) for key, values in sorted(found.items())} | {
        "n": {key: len(values) for key, values in sorted(found.items())}
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--real", type=Path, default=default_real_val_dir(), help="default: data/real-val")
    parser.add_argument("--out", default="docs/results/photo_scores.json")
    args = parser.parse_args()
    out = Path(args.out)
    for checkpoint in args.checkpoints:
        entry = {"model": checkpoint.stem, "scores": score(checkpoint, args.real)}
        runs = json.loads(out.read_text()) if out.is_file() else []
        runs = [r for r in runs if r["model"] != entry["model"]] + [entry]
        out.write_text(json.dumps(runs, indent=1) + "\n")
        scores = entry["scores"]
        print(f"{checkpoint.stem}: " + ", ".join(f"{k} {v}" for k, v in scores.items() if k != "n"), flush=True)


if __name__ == "__main__":
    main()
