"""Train on a folder of real pairs and score the model on real photographs, per source, over seeds:
the measurements behind docs/real-photos.md. Each run is one (name, seed) entry of the JSON file,
rewritten after every run, so a long series can stop and carry on.

    python experiments/real_pairs.py --name real --seeds 0 1 2 -- data_root=data/real-train:data/real-objects

Settings after `--` are training settings by name (`image_size=96`, `adv_weight=0`, `zoom_out=1`); each entry
records them (the runs without zoom-out: `zoom_out=1.0`).
Scores: the real-photograph folder's choose and report halves (see data/real.py), each per source
(the stem's prefix before its first "_") and overall, the training folder's test split, and the
course's new photos.
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bgremove_utils.data.dataset import PairedImageDataset, new_photos_loader, split_loader
from bgremove_utils.data.pairs import find_pairs
from bgremove_utils.data.real import real_half
from bgremove_utils.data.sample import make_sample
from bgremove_utils.evaluation.metrics import evaluate
from bgremove_utils.models.checkpoint import load_checkpoint, load_generator, saved_config
from bgremove_utils.paths import default_real_val_dir
from bgremove_utils.settings import EVAL_BATCH
from bgremove_utils.training.loop import train

KEYS = ("iou", "sad", "conn", "holes", "mae")


def _value(text: str):
    if text == "":
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def groups(stem: str) -> tuple[str, str]:
    """The two groups a real photograph is scored in: its half, all of it and its source ("report/all",
    "report/davis"); the source is the stem's prefix before its first "_"."""
    half = real_half(stem)
    return f"{half}/all", f"{half}/{stem.split('_')[0]}"


def real_loaders(root: str, size: int) -> dict[str, DataLoader]:
    """`{half/source: loader}` for each half of `root` and each source in it, and `{half/all: ...}`."""
    pairs, _ = find_pairs(root, warn=False)
    by_group: dict[str, list] = {}
    for pair in pairs:
        for key in groups(pair[0].stem):
            by_group.setdefault(key, []).append(pair)
    return {
        key: DataLoader(PairedImageDataset(found, size, keep_empty=True), batch_size=EVAL_BATCH)
        for key, found in sorted(by_group.items())
    }


class Unmirrored(torch.nn.Module):
    """A G whose `predict` is its prediction alone (`mirror=False`), as `evaluate` calls it: every entry
    of real_pairs.json is scored so, comparable whenever it was made (experiments/mirror_real.py
    scores kept models both ways)."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator.predict(x, mirror=False)


def score(checkpoint: Path, real_root: str) -> dict:
    generator = Unmirrored(load_generator(checkpoint, device="cpu"))
    size = generator.generator.config.image_size
    data = saved_config(load_checkpoint(checkpoint), checkpoint).data
    if not data.names_source():
        data = replace(data, data_root=str(make_sample()))
    loaders = {"test": split_loader(data, size, "test"), "new_photos": new_photos_loader(size)}
    loaders |= real_loaders(real_root, size)
    out = {}
    for name, loader in loaders.items():
        result = evaluate(generator, loader, baseline=True)
        out[name] = {who: {k: round(result[who][k], 4) for k in KEYS} for who in result}
        out[name]["n"] = len(loader.dataset)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", default="docs/results/real_pairs.json")
    parser.add_argument(
        "--real", default=str(default_real_val_dir()), help="real test photographs (default: data/real-val)"
    )
    parser.add_argument("--profile", default="cpu")
    parser.add_argument(
        "--pretrain-steps",
        type=int,
        help="first train this many steps on the course's sample, then resume on the settings' folder: "
        "give `epochs` as the two runs' epochs together",
    )
    parser.add_argument("--keep", help="a folder to keep each run's best.pt in, as NAME_SEED.pt")
    parser.add_argument("settings", nargs="*", help="name=value training settings")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.settings)
    overrides = {k: _value(v) for k, v in overrides.items()}
    out = Path(args.out)
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            if args.pretrain_steps:
                train(
                    profile=args.profile,
                    seed=seed,
                    checkpoint_dir=tmp,
                    progress=False,
                    sample_every=0,
                    **{k: v for k, v in overrides.items() if k not in ("data_root", "epochs", "steps")},
                    steps=args.pretrain_steps,
                )
            history = train(
                resume=bool(args.pretrain_steps),
                profile=args.profile,
                seed=seed,
                checkpoint_dir=tmp,
                progress=False,
                sample_every=0,
                **overrides,
            )
            seconds = time.perf_counter() - start
            scores = score(Path(tmp) / "best.pt", args.real)
            if args.keep:
                Path(args.keep).mkdir(parents=True, exist_ok=True)
                shutil.copy(Path(tmp) / "best.pt", Path(args.keep) / f"{args.name}_{seed}.pt")
        third = history[-max(1, len(history) // 3) :]
        entry = {
            "name": args.name,
            "seed": seed,
            "profile": args.profile,
            "settings": overrides,
            "epochs": len(history),
            "train_s": round(seconds, 1),
            "val_iou": round(history[-1]["val_iou"], 4),
            "threads": torch.get_num_threads(),  # its minutes compare only with runs of as many threads
            "scores": scores,
        }
        if "loss_d" in history[-1]:  # no D is built without the GAN (adv_weight=0)
            entry["loss_d_last_third"] = round(sum(r["loss_d"] for r in third) / len(third), 4)
        runs = json.loads(out.read_text()) if out.exists() else []
        runs = [r for r in runs if (r["name"], r["seed"]) != (args.name, seed)] + [entry]
        out.write_text(json.dumps(runs, indent=1) + "\n")
        real = {k: v["model"]["iou"] for k, v in scores.items() if "/" in k}
        print(
            f"{args.name} seed {seed}: {seconds:.0f} s, val {entry['val_iou']:.3f}, "
            f"test {scores['test']['model']['iou']:.3f}, " + ", ".join(f"{k} {v:.3f}" for k, v in real.items()),
            flush=True,
        )


if __name__ == "__main__":
    main()
