"""The state of a training run in a checkpoint: both networks, both optimizers, the AMP scalers, the
learning-rate schedules, the epoch, the history, the config and every random number generator, so
that a run killed at any moment resumes exactly from its last checkpoint. Exactly with
`num_workers=0`: DataLoader workers draw the augmentations from random streams of their own, which
start anew in a resumed run.
"""

from __future__ import annotations

import copy
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import Loaders
from ..errors import CheckpointError
from ..models.checkpoint import load_checkpoint, load_state, saved_config
from ..settings import TrainConfig
from .gan import GAN


def rng_state() -> dict:
    """Every random number generator training touches, to resume exactly, as tensors and plain
    types only (what `torch.load(weights_only=True)` reads)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [name, keys.tolist(), pos, has_gauss, gauss]
    state = {"python": random.getstate(), "numpy": numpy_state, "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_state(
    gan: GAN, schedulers: list, loaders: Loaders, config: TrainConfig, epoch: int, history: list, best_iou: float
) -> dict:
    """Everything a run needs to carry on exactly: what `save_checkpoint` writes each epoch."""
    return {
        "generator": gan.g.state_dict(),
        "discriminator": gan.d.state_dict() if gan.d is not None else None,  # None: trained without D
        "opt_g": gan.opt_g.state_dict(),
        "opt_d": gan.opt_d.state_dict() if gan.opt_d is not None else None,
        "scaler_g": gan.scaler_g.state_dict(),
        "scaler_d": gan.scaler_d.state_dict(),
        "schedulers": [s.state_dict() for s in schedulers],
        "epoch": epoch,
        "history": history,
        "best_iou": best_iou,
        "config": config.to_dict(),
        "rng": rng_state(),
        "loader_rng": loaders.train.generator.get_state() if loaders.train.generator is not None else None,
    }


def step_state(gan: GAN, whole: bool = False, device: str | None = None) -> dict:
    """A copy of what a training step changes before G's update: D's weights and buffers, D's
    optimizer and the scalers; `whole`: G's and its optimizer's too. `undo_step` puts it back: a
    step that ran out of memory leaves no trace, and a retry starts where it did. `device`: where
    the copy lives ("cpu": not in a GPU's memory that just ran out); default, where the tensors are."""
    saved = {"d": gan.d, "opt_d": gan.opt_d, "scaler_g": gan.scaler_g, "scaler_d": gan.scaler_d}
    if whole:
        saved |= {"g": gan.g, "opt_g": gan.opt_g}
    saved = {key: v.state_dict() for key, v in saved.items() if v is not None}
    return copy.deepcopy(saved) if device is None else _copy_to(saved, device)


def _copy_to(value, device: str):
    """A copy of `value` (nested dicts, lists and tuples of tensors and plain values), its tensors on `device`."""
    if torch.is_tensor(value):
        return value.to(device, copy=True)
    if isinstance(value, dict):
        return {key: _copy_to(v, device) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_copy_to(v, device) for v in value)
    return copy.deepcopy(value)


def undo_step(gan: GAN, saved: dict) -> None:
    """Put back the state `step_state` copied (copied again: it may be put back more than once)."""
    for key in ("d", "opt_d", "g", "opt_g"):
        if key in saved:
            getattr(gan, key).load_state_dict(copy.deepcopy(saved[key]))  # an optimizer keeps what it is given
    for key in ("scaler_g", "scaler_d"):  # fresh ones: none of the failed step's
        setattr(gan, key, _scaler(gan.device, getattr(gan, key).is_enabled(), saved[key]))


def _scaler(device: torch.device, enabled: bool, saved: dict | None) -> torch.amp.GradScaler:
    """A loss scaler for `device` with a saved state, or a fresh one where the state is empty (saved
    by a run without float16): its scale then finds its level in the first few steps."""
    scaler = torch.amp.GradScaler(device.type, enabled=enabled)
    if enabled and saved:
        scaler.load_state_dict(saved)
    return scaler


def restore_training(path: Path, gan: GAN, loaders: Loaders, config: TrainConfig) -> tuple[list, float, int, list]:
    """Load `path` into the networks, optimizers, scalers and RNGs; (history, best IoU, next epoch,
    the learning-rate schedules' saved states, for `loop.one_cycle`). The file is read onto the CPU
    whatever the training device: the random generators' states must be CPU tensors, and
    `load_state_dict` copies the rest to where the networks and the optimizers' steps are."""
    state = load_checkpoint(path, map_location="cpu")
    saved = saved_config(state, path)
    for part in ("g", "d"):  # the networks' shapes must be the same; anything else may change
        ours, theirs = asdict(getattr(config, part)), asdict(getattr(saved, part))
        for key in (k for k in ours if ours[k] != theirs[k]):
            raise CheckpointError(
                f"{path}: made with {key}={theirs[key]}, this run has {key}={ours[key]}; "
                "use the same settings to resume, or another checkpoint_dir to start afresh."
            )
    trained = state.get("generator_trained")  # a run with a moving average of G saved G's own weights here
    load_state(gan.g, trained if trained is not None else state["generator"], path, "generator")
    networks = [(gan.opt_g, "opt_g", config.lr_g)]
    if gan.d is not None and state.get("discriminator") is not None:  # else D starts afresh (or there is none)
        load_state(gan.d, state["discriminator"], path, "discriminator")
        networks.append((gan.opt_d, "opt_d", config.lr_d))
    for optimizer, name, lr in networks:
        optimizer.load_state_dict(state[name])
        for group in optimizer.param_groups:
            group["lr"] = lr  # the rates asked for now win (--resume --lr-g 1e-6); a one-cycle schedule sets its own
    for name in ("scaler_g", "scaler_d"):  # a checkpoint with one scaler for both: that one
        setattr(gan, name, _scaler(gan.device, getattr(gan, name).is_enabled(), state.get(name, state.get("scaler"))))
    set_rng_state(state["rng"])
    if state.get("loader_rng") is not None and loaders.train.generator is not None:
        loaders.train.generator.set_state(state["loader_rng"])
    return state["history"], state["best_iou"], state["epoch"], state.get("schedulers", [])
