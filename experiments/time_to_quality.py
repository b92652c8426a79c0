"""Seconds of training until the validation IoU first reaches each level, for one setting changed
alone: the measurements behind docs/performance.md's warm-up table. Each (setting, seed) run is an
entry of the JSON file, rewritten after every run.

    python experiments/time_to_quality.py --data-root data/real-train --warmup 0.05 0.15 --seeds 0 1 2 --zoom-out 1

(the page's runs were made without zoom-out, `--zoom-out 1`; left out, the profile's own).

The `cpu` profile trains with `stop_at_iou` at the last level, as the bench's own run does
(`bench --only quality`), without its peers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from bgremove_utils.bench.quality import _elapsed, _reach
from bgremove_utils.data.dataset import make_loaders
from bgremove_utils.settings import make_config
from bgremove_utils.training.loop import train

LEVELS = (0.65, 0.70, 0.80)


def time_to_quality(data_root: str, warmup: float, seed: int, zoom_out: float | None = None) -> dict:
    """One run of the `cpu` profile on `data_root`, stopped at the last level: its history's
    training seconds and validation IoUs, and the seconds to each level (None: not reached)."""
    settings = {"profile": "cpu", "data_root": data_root, "seed": seed, "warmup": warmup}
    if zoom_out is not None:
        settings["zoom_out"] = zoom_out
    config = make_config(**settings)
    loaders = make_loaders(config.data, config.g.image_size)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        history = train(
            checkpoint_dir=tmp, loaders=loaders, progress=False, sample_every=0, stop_at_iou=LEVELS[-1], **settings
        )
    reach = {f"{level:.2f}": _reach(history, level) for level in LEVELS}  # timed as the bench times its runs
    ious = [row["val_iou"] for row in history]
    elapsed = _elapsed(history).tolist()
    zoom = config.data.zoom_out
    run = {"data_root": data_root, "warmup": warmup, "zoom_out": zoom, "seed": seed, "elapsed": elapsed}
    return run | {"val_iou": ious, "reach": reach}


def _key(run: dict) -> tuple:
    """What makes a run another: its setting and seed (a run of another zoom-out does not replace it)."""
    return run["data_root"], run["warmup"], run["zoom_out"], run["seed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--warmup", type=float, nargs="+", default=[0.05, 0.15])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--zoom-out", type=float, help="the training pictures' zoom-out (default: the profile's)")
    parser.add_argument("--out", default="docs/results/warmup_time_to_quality.json")
    args = parser.parse_args()
    out = Path(args.out)
    runs = json.loads(out.read_text()) if out.is_file() else []
    for seed in args.seeds:
        for warmup in args.warmup:
            run = time_to_quality(args.data_root, warmup, seed, args.zoom_out)
            runs = [r for r in runs if _key(r) != _key(run)] + [run]
            out.write_text(json.dumps(runs, indent=1))
            print(f"warmup {warmup}, seed {seed}: " + ", ".join(f"{k}: {v}" for k, v in run["reach"].items()))


if __name__ == "__main__":
    main()
