"""Checkpoints: one dict holding both networks, both optimizers, the AMP scaler, the epoch, the
history, the config and the RNG states, written atomically so that a crash leaves a loadable file.
"""

from __future__ import annotations

import glob
import os
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .errors import CheckpointError
from .models import GModel
from .paths import default_checkpoint_dir

if TYPE_CHECKING:  # only for the annotations: train imports this module
    from .config import TrainConfig
    from .data import Loaders
    from .train import GAN


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """torch.save into a temporary file beside `path`, fsync, then os.replace: at any moment
    `path` is either the previous checkpoint or the complete new one. Temporary files a killed
    run left beside it are removed then (one run writes to a checkpoint folder at a time)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, or raise one CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint there; train first (python -m bgremove_utils train) or pass another path."
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # truncated or corrupt: RuntimeError, EOFError, UnpicklingError, BadZipFile...
        why = (str(exc).splitlines() or [""])[0][:120]
        raise CheckpointError(
            f"{path}: not a readable checkpoint, damaged or of another program ({type(exc).__name__}: {why}); "
            "delete it and train again."
        ) from None
    if not isinstance(state, dict) or "generator" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not a bgremove_utils checkpoint (no generator or config in it).")
    return state


def strip_ddp_prefix(state_dict: dict) -> dict:
    """Keys without DistributedDataParallel's `module.` prefix, so any checkpoint loads plainly."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def load_state(model: torch.nn.Module, state_dict: dict, path: str | os.PathLike, what: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as a CheckpointError naming the file."""
    try:
        model.load_state_dict(strip_ddp_prefix(state_dict))
    except (RuntimeError, TypeError, AttributeError, KeyError) as exc:  # wrong shapes or names, or not a state dict
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(
            f"{path}: its {what} was made with another model configuration ({first}); "
            "train with the same settings, or start afresh in another checkpoint_dir."
        ) from None


def load_generator(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GModel:
    """The trained GModel of a checkpoint (default: <project>/checkpoints/best.pt), in eval mode.
    A checkpoint holding only `generator` and `config` is enough."""
    path = Path(path) if path is not None else default_checkpoint_dir() / "best.pt"
    state = load_checkpoint(path)
    config = state["config"]
    try:
        model = GModel(**{key: config[key] for key in ("base_channels", "depth", "max_channels")})
        image_size = int(config["image_size"])  # the size it was trained at, used by inference
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: its config lacks a usable model setting ({type(exc).__name__}: {exc}); "
            "it was not written by this course's train(): train again."
        ) from None
    load_state(model, state["generator"], path, "generator")
    model.image_size = image_size
    return model.to(device).eval()


def rng_state() -> dict:
    """Every random number generator training touches, to resume exactly."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def training_state(
    gan: GAN, schedulers: list, loaders: Loaders, config: TrainConfig, epoch: int, history: list, best_iou: float
) -> dict:
    """Everything a run needs to carry on exactly: what `save_checkpoint` writes each epoch."""
    return {
        "generator": gan.g.state_dict(),
        "discriminator": gan.d.state_dict(),
        "opt_g": gan.opt_g.state_dict(),
        "opt_d": gan.opt_d.state_dict(),
        "scaler": gan.scaler.state_dict(),
        "schedulers": [s.state_dict() for s in schedulers],
        "epoch": epoch,
        "history": history,
        "best_iou": best_iou,
        "config": config.to_dict(),
        "rng": rng_state(),
        "loader_rng": loaders.train.generator.get_state() if loaders.train.generator is not None else None,
    }


def restore_training(
    path: Path, gan: GAN, schedulers: list, loaders: Loaders, config: TrainConfig
) -> tuple[list, float, int]:
    """Load `path` into the networks, optimizers, scaler and RNGs; (history, best IoU, next epoch)."""
    state = load_checkpoint(path, map_location=gan.device)
    saved = state["config"]
    for key in ("image_size", "base_channels", "max_channels", "depth", "d_channels", "d_down"):
        if saved.get(key) != getattr(config, key):
            raise CheckpointError(
                f"{path}: made with {key}={saved.get(key)}, this run has {key}={getattr(config, key)}; "
                "use the same settings to resume, or another checkpoint_dir to start afresh."
            )
    load_state(gan.g, state["generator"], path, "generator")
    load_state(gan.d, state["discriminator"], path, "discriminator")
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    gan.scaler.load_state_dict(state["scaler"])
    for scheduler, saved_state in zip(schedulers, state.get("schedulers", [])):
        total = scheduler.total_steps  # more epochs than first planned: stretch the schedule's tail
        scheduler.load_state_dict(saved_state)
        scheduler.total_steps = max(total, scheduler.last_epoch + 1)
    set_rng_state(state["rng"])
    if state.get("loader_rng") is not None and loaders.train.generator is not None:
        loaders.train.generator.set_state(state["loader_rng"])
    return state["history"], state["best_iou"], state["epoch"]
