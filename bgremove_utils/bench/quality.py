"""Time to quality: training seconds until the validation IoU first reaches each level, this course's
profile beside its peers on the same data and clock, one after another: the original project's plain
settings, and pix2pix's recipe at batch 1 and 16 (pix2pix.py)."""

from __future__ import annotations

import contextlib
import io
import tempfile

import numpy as np

from ..data.dataset import make_loaders
from ..settings import ORIGINAL, make_config
from ..training.loop import train
from .common import Row
from .pix2pix import train_pix2pix

TARGET_RATIO = 5.0  # this course reaches each level at least so many times sooner than pix2pix's recipe
# the original project's optimisation (constant rates: resumed a few epochs at a time, exactly), in float32,
# its G as trained (no moving average, whatever the profile asks), and its game from the first step
PLAIN = {key: ORIGINAL[key] for key in ("lr_g", "lr_d", "lr_schedule")}
PLAIN |= {"amp": False}


def bench_quality(kwargs: dict, levels: tuple[float, ...], peer_seconds: float) -> tuple[list[Row], dict]:
    """Our profile (`kwargs`) trained until its validation IoU reaches the last of `levels`; then each
    peer for `peer_seconds` of training (or until it reaches that level too). Seconds are training
    time, validation left out. Rows: each level's time, ours beside each peer's, with the ratio
    (a bound when the peer did not get there), and the time each took to the best IoU the peer reached."""
    config = make_config(**kwargs)
    loaders = make_loaders(config.data, config.g.image_size)
    common = {"loaders": loaders, "progress": False, "sample_every": 0, "stop_at_iou": levels[-1]}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        runs = {"ours": train(checkpoint_dir=f"{tmp}/ours", **common, **kwargs)}
        runs["plain settings"] = _plain(kwargs, common, f"{tmp}/plain", peer_seconds)
        for batch in (1, 16):
            runs[f"pix2pix b{batch}"] = train_pix2pix(loaders, batch, peer_seconds, config.seed, levels[-1])
    ours, rows = runs["ours"], []
    for peer, history in runs.items():
        if peer != "ours":
            rows += _rows(peer, ours, history, levels, target="pix2pix" in peer)
    return rows, {name: {"history": h, "trained_s": _trained(h)} for name, h in runs.items()}


def _plain(kwargs: dict, common: dict, checkpoint_dir: str, seconds: float) -> list[dict]:
    """The original project's settings (Adam 1e-4 / 1e-5, constant, float32), resumed a few epochs
    at a time until it reaches the last level or has trained `seconds`."""
    history, chunk = [], 3
    while _trained(history) < seconds and not (history and history[-1]["val_iou"] >= common["stop_at_iou"]):
        overrides = {**kwargs, **PLAIN, "epochs": len(history) + chunk}
        history = train(checkpoint_dir=checkpoint_dir, resume=True, **common, **overrides)
        if len(history) < overrides["epochs"] and history[-1]["val_iou"] < common["stop_at_iou"]:
            break  # stopped with Ctrl-C
    return history


def _elapsed(history: list[dict]) -> np.ndarray:
    """Training seconds at the end of each epoch, its validation left out."""
    return np.cumsum([row["seconds"] - row.get("val_seconds", 0.0) for row in history])


def _trained(history: list[dict]) -> float:
    return float(_elapsed(history)[-1]) if history else 0.0


def _reach(history: list[dict], level: float) -> float | None:
    """Training seconds to the first epoch whose validation IoU reached `level`; None: never."""
    return next((float(s) for s, row in zip(_elapsed(history), history) if row["val_iou"] >= level), None)


def _best(history: list[dict]) -> float:
    return max((row["val_iou"] for row in history), default=0.0)


def _rows(peer: str, ours: list[dict], theirs: list[dict], levels, target: bool) -> list[Row]:
    """Each level's time, ours vs `peer`'s, ratio or its bound, and the target when `target`; then
    the time each took to the best validation IoU the peer reached."""
    rows = []
    for level in levels:
        a, b = _reach(ours, level), _reach(theirs, level)
        note = f"ours: not reached in {_trained(ours):.0f} s (best {_best(ours):.3f}); " if a is None else ""
        bound = _trained(theirs) / a if a and b is None else None
        if b is None:
            note += f"{peer}: not reached in {_trained(theirs):.0f} s (best {_best(theirs):.3f})"
            note += f", ratio >= {bound:.1f}x" if bound else ""
        met = None
        if target:
            ratio = b / a if a and b else bound
            met = ratio is not None and ratio >= TARGET_RATIO
            if not met and b is None and a is not None:
                note += f"; not shown in its {_trained(theirs):.0f} s: --peer-seconds {TARGET_RATIO * a:.0f} decides"
        tgt = f">= {TARGET_RATIO:.0f}x" if target else ""
        rows.append(Row(f"IoU {level:.2f}: {peer}", "s", a, b, False, tgt, met, note.strip("; ")))
    best = _best(theirs)
    b, a = _reach(theirs, best), _reach(ours, best)
    note = f"the best IoU {peer} reached in {_trained(theirs):.0f} s"
    note += "; ours: in its first epoch (a bound: validated once an epoch)" if a and a == _trained(ours[:1]) else ""
    rows.append(Row(f"IoU {best:.3f}: {peer}", "s", a, b, False, note=note))
    return rows
