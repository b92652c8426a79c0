"""The export at the photo's own resolution on real photographs: the network's matte upsampled
bilinearly against the guided refinement (`export.refine`), each scored against the human-made
mask at the photo's size, per source, for each model given. Writes docs/results/refine_real.json.

    python experiments/refine_real.py MODEL.pt [MODEL.pt ...] [--real ../shared/real-val --half report]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from bgremove_utils.data.masks import read_matte
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.real import real_half
from bgremove_utils.export.inference import predict_matte
from bgremove_utils.models.checkpoint import load_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--real", default="../shared/real-val")
    parser.add_argument("--half", default="report")
    parser.add_argument("--out", default="docs/results/refine_real.json")
    args = parser.parse_args()
    pairs = [p for p in find_pairs(args.real, warn=False)[0] if real_half(p[0].stem) == args.half]
    results = {}
    for model_path in args.models:
        generator = load_generator(model_path, device="cpu")
        counts: dict[str, dict[str, list[int]]] = {}
        for photo_path, mask_path in pairs:
            photo = Image.open(photo_path).convert("RGB")
            truth = read_matte(mask_path).alpha >= 128
            source = photo_path.stem.split("_")[0]
            for way, refine in (("bilinear", False), ("refined", True)):
                pred = predict_matte(generator, photo, refine=refine) >= 128
                for key in (source, "all"):
                    inter_union = counts.setdefault(way, {}).setdefault(key, [0, 0])
                    inter_union[0] += int(np.logical_and(pred, truth).sum())
                    inter_union[1] += int(np.logical_or(pred, truth).sum())
        results[Path(model_path).stem] = {
            way: {key: round(i / u, 4) for key, (i, u) in sorted(by.items())} for way, by in counts.items()
        }
        print(Path(model_path).stem, results[Path(model_path).stem], flush=True)
    out = Path(args.out)
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps(old | results, indent=1) + "\n")


if __name__ == "__main__":
    main()
