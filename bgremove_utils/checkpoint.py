"""Checkpoints: one dict holding both networks, both optimizers, the AMP scaler, the epoch, the
history, the config and the RNG states, written atomically so that a crash leaves a loadable file.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .colab import upload_checkpoint
from .config import TrainConfig
from .errors import CheckpointError
from .files import atomic_write
from .models import GConfig, GModel
from .paths import default_checkpoint_dir

if TYPE_CHECKING:  # only for the annotations: train imports this module
    from .data import Loaders
    from .train import GAN


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """torch.save `state` atomically and synced to the disk (`files.atomic_write`): at any moment
    `path` is either the previous checkpoint or the complete new one, even after a power cut."""
    with atomic_write(path, sync=True) as handle:
        torch.save(state, handle)
    return Path(path)


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


def saved_config(state: dict, path: str | os.PathLike) -> TrainConfig:
    """The TrainConfig a checkpoint was trained with (also from a checkpoint of before the config
    had parts), or a CheckpointError when it does not say what generator it holds."""
    config = state["config"]
    g = config.get("g", config) if isinstance(config, dict) else None  # flat, before the parts
    if not isinstance(g, dict) or not {f.name for f in fields(GConfig)} <= set(g):
        raise CheckpointError(
            f"{path}: its config lacks a usable model setting (the generator's {', '.join(asdict(GConfig()))}); "
            "it was not written by this course's train(): train again."
        )
    return TrainConfig.from_dict(config)


def load_generator(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> GModel:
    """The trained GModel of a checkpoint (default: <project>/checkpoints/best.pt), in eval mode,
    rebuilt from the config saved beside its weights. `generator` and `config` are enough."""
    path = Path(path) if path is not None else default_checkpoint_dir() / "best.pt"
    state = load_checkpoint(path)
    model = GModel(saved_config(state, path).g)
    load_state(model, state["generator"], path, "generator")
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
    saved = saved_config(state, path)
    for part in ("g", "d"):  # the networks' shapes must be the same; anything else may change
        ours, theirs = asdict(getattr(config, part)), asdict(getattr(saved, part))
        for key in (k for k in ours if ours[k] != theirs[k]):
            raise CheckpointError(
                f"{path}: made with {key}={theirs[key]}, this run has {key}={ours[key]}; "
                "use the same settings to resume, or another checkpoint_dir to start afresh."
            )
    load_state(gan.g, state["generator"], path, "generator")
    load_state(gan.d, state["discriminator"], path, "discriminator")
    gan.opt_g.load_state_dict(state["opt_g"])
    gan.opt_d.load_state_dict(state["opt_d"])
    gan.scaler.load_state_dict(state["scaler"])
    for scheduler, saved_state in zip(schedulers, state.get("schedulers", [])):
        planned = scheduler.lr_lambdas[0].total  # this run's plan, which may be longer than the saved one's
        scheduler.load_state_dict(saved_state)
        for schedule in scheduler.lr_lambdas:  # more epochs than first planned: anneal from here to the new end
            schedule.stretch(planned, scheduler.last_epoch)
    set_rng_state(state["rng"])
    if state.get("loader_rng") is not None and loaders.train.generator is not None:
        loaders.train.generator.set_state(state["loader_rng"])
    return state["history"], state["best_iou"], state["epoch"]


def ensure_checkpoint(checkpoint_dir: str | os.PathLike | None = None, profile: str = "quick") -> Path:
    """`checkpoint_dir/best.pt` (default <project>/checkpoints/best.pt) for a notebook that needs a
    trained generator, saying where it came from: the one there; else, in Colab, one you upload
    (downloaded from notebook 3); else the `profile` (quick: about a minute on a CPU), trained first."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    best = folder / "best.pt"
    if best.is_file():
        print(f"Using {best}.")
    elif upload_checkpoint(folder) is not None:
        print(f"Using the uploaded checkpoint, now {best}.")
    else:
        from .train import train  # here, not at the top: train imports this module

        print(f"No checkpoint at {best} yet: training the {profile!r} profile first (about a minute).")
        train(profile=profile, checkpoint_dir=str(folder))
    return best
