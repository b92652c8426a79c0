"""Checkpoint files: one dict per file (both networks, the config and, from training, everything a run
needs to resume; see training/state.py), written atomically so that a crash leaves a loadable file;
and `load_generator`, all that inference needs from one.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from ..errors import CheckpointError
from ..files import atomic_write, write_problem
from ..paths import default_checkpoint_dir
from ..settings import BEST_CHECKPOINT, GConfig, TrainConfig
from .networks import GModel


def save_checkpoint(state: dict, path: str | os.PathLike) -> Path:
    """torch.save `state` atomically and synced to the disk (`files.atomic_write`): at any moment
    `path` is either the previous checkpoint or the complete new one, even after a power cut.
    A full disk or a folder that cannot be written is one CheckpointError naming the file and
    the space it needs (torch.save says "unexpected pos" on a full disk: a RuntimeError)."""
    path = Path(path)
    try:
        with atomic_write(path, sync=True) as handle:
            torch.save(state, handle)
    except (OSError, RuntimeError) as exc:
        needed = max(tensor_bytes(state), path.stat().st_size if path.is_file() else 0)
        problem = write_problem(exc, path, needed)
        if problem is None:
            raise
        raise CheckpointError(f"cannot write {path}: {problem}") from None
    return path


def tensor_bytes(value) -> int:
    """The bytes of the tensors in `value` (nested dicts, lists, tuples): about the size of its checkpoint."""
    if torch.is_tensor(value):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v) for v in value)
    return 0


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint dict, or raise one CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no checkpoint there; train first (python -m bgremove_utils train) or pass another path."
        )
    try:
        with torch.serialization.safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated or corrupt: RuntimeError, EOFError, UnpicklingError, BadZipFile...
        if isinstance(exc, pickle.UnpicklingError) and any(words in str(exc) for words in UNSAFE):
            raise CheckpointError(
                f"{path}: refused, it holds Python objects other than weights, numbers and settings "
                f"({_first_line(exc)}), and loading them could run code; a checkpoint "
                "this course writes never does: use one you trained, or train again."
            ) from None
        why = (str(exc).splitlines() or [""])[0][:120]
        raise CheckpointError(
            f"{path}: not a readable checkpoint, damaged or of another program ({type(exc).__name__}: {why}); "
            "delete it and train again."
        ) from None
    if not isinstance(state, dict) or "generator" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not a bgremove_utils checkpoint (no generator or config in it).")
    return state


# What torch's weights_only unpickler says of a pickle that names code to run (not of a damaged file)
UNSAFE = ("GLOBAL", "Can only build")


def _numpy_array_globals() -> list:
    """What unpickling a numpy array needs, allowed beside weights_only's tensors and plain types:
    checkpoints of earlier versions of the course kept numpy's random state as an array."""
    core = np._core if hasattr(np, "_core") else np.core
    rebuild = core.multiarray._reconstruct  # named numpy.core... in a numpy 1 pickle, numpy._core... in a numpy 2 one
    names = [(rebuild, f"{package}.multiarray._reconstruct") for package in ("numpy.core", "numpy._core")]
    dtype = [type(np.dtype(np.uint32))]  # numpy 2's numpy.dtypes.UInt32DType; numpy.dtype itself before
    return [np.ndarray, np.dtype, *names, *dtype]


def _first_line(exc: BaseException) -> str:
    """What torch's weights_only unpickler refused, from its long message: "unsupported GLOBAL os.system"."""
    lines = [line.split("WeightsUnpickler error:")[-1].strip() for line in str(exc).splitlines()]
    found = next((line for line in lines if any(words in line for words in UNSAFE)), "")
    return found.split(" was not")[0].split(" whose")[0][:120]


def load_state(model: torch.nn.Module, state_dict: dict, path: str | os.PathLike, what: str) -> None:
    """`model.load_state_dict`, with a mismatch reported as a CheckpointError naming the file."""
    try:
        state_dict = dict(state_dict)  # a copy: torch's helper renames keys in place
        consume_prefix_in_state_dict_if_present(state_dict, "module.")  # saved from a DDP-wrapped model
        model.load_state_dict(state_dict)
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
    path = Path(path) if path is not None else default_checkpoint_dir() / BEST_CHECKPOINT
    state = load_checkpoint(path)
    model = GModel(saved_config(state, path).g)
    load_state(model, state["generator"], path, "generator")
    return model.to(device).eval()
