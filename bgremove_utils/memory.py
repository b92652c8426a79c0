"""GPU memory: a batch that does not fit is one clear message with a batch size that does, found by
trying smaller ones; and the peak memory an epoch took, for the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .errors import ConfigError


def fitting_batch(step: Callable[[int], object], batch_size: int) -> int:
    """The largest batch size, halving from `batch_size`, for which `step(size)` runs without
    running out of memory (0 if not even one picture fits)."""
    size = batch_size // 2
    while size >= 1:
        try:
            step(size)
            return size
        except torch.OutOfMemoryError:
            free_cached()
            size //= 2
    return 0


def free_cached() -> None:
    """Hand the memory PyTorch keeps cached back to the GPU (nothing to do elsewhere)."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(batch_size: int, fits: int, device: torch.device) -> ConfigError:
    """The one-line error for a batch that did not fit, with what to do instead."""
    where = "the device"
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        where = f"{properties.name}'s {properties.total_memory / 2**30:.1f} GiB"
    if fits == 0:
        return ConfigError(f"batch_size={batch_size}: not even one picture fits in {where}; use a smaller image_size.")
    parts = math.ceil(batch_size / fits)
    return ConfigError(
        f"batch_size={batch_size}: a step does not fit in {where}, one of {fits} does: use batch_size={fits}, "
        f"or keep batch_size={batch_size} in {parts} parts with grad_accum={parts} (--grad-accum {parts})."
    )


def start_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    """The most GPU memory allocated since `start_peak`, in GiB; None on other devices."""
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
