"""Time to quality: training seconds until the validation IoU first reaches a threshold, the
profile as it is vs the seed's plain settings."""

from __future__ import annotations

import contextlib
import io
import tempfile
import time

import numpy as np

from ..data.dataset import make_loaders
from ..settings import ORIGINAL, make_config
from ..training.loop import train
from .common import Row


def bench_quality(kwargs: dict, thresholds, cap: float) -> tuple[list[Row], dict]:
    """Seconds of training until the validation IoU first reaches each threshold: the profile as it
    is vs the seed's plain settings (Adam 1e-4 / 1e-5, constant, float32), resumed a few epochs at a
    time until it reaches the last threshold or has run 2x as long as ours (at most `cap` s)."""
    config = make_config(**kwargs)
    loaders = make_loaders(config.data, config.g.image_size)
    common = {"loaders": loaders, "progress": False, "sample_every": 0}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        start = time.perf_counter()
        ours = train(checkpoint_dir=f"{tmp}/ours", **common, **kwargs)
        ours_wall, plain, start = time.perf_counter() - start, [], time.perf_counter()
        seed = {key: ORIGINAL[key] for key in ("lr_g", "lr_d", "lr_schedule")} | {"amp": False}  # resumed exactly
        chunk = max(1, len(ours) // 6)
        while time.perf_counter() - start < min(cap, 2 * ours_wall) and _best(plain) < thresholds[-1]:
            overrides = {**kwargs, **seed, "epochs": len(plain) + chunk}
            plain = train(checkpoint_dir=f"{tmp}/plain", resume=True, **common, **overrides)
            if len(plain) < overrides["epochs"]:
                break  # stopped with Ctrl-C
    trained = {"ours": sum(r["seconds"] for r in ours), "plain": sum(r["seconds"] for r in plain)}

    def reach(history, threshold):  # seconds of the epochs up to the first that reached it
        elapsed = np.cumsum([row["seconds"] for row in history])
        return next((float(s) for s, row in zip(elapsed, history) if row["val_iou"] >= threshold), None)

    rows = []
    for threshold in thresholds:
        a, b = reach(ours, threshold), reach(plain, threshold)
        note = f"ours: not reached in {trained['ours']:.0f} s, best IoU {_best(ours):.3f}; " if a is None else ""
        note += f"plain: not reached in {trained['plain']:.0f} s, best IoU {_best(plain):.3f}" if b is None else ""
        note += f" (ratio >= {trained['plain'] / a:.1f}x)" if a and b is None else ""
        target, met = ("<= 180 s", a is not None and a <= 180) if threshold == 0.95 else ("", None)
        rows.append(Row(f"time to val IoU {threshold:.2f}", "s", a, b, False, target, met, note.strip("; ")))
    return rows, {"ours": ours, "plain": plain, "trained_s": trained, "ours_wall_s": ours_wall}


def _best(history: list[dict]) -> float:
    return max((row["val_iou"] for row in history), default=0.0)
