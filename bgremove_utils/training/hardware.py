"""What the machine can do: the CPU's name and whether it computes bfloat16 natively (read once from
/proc/cpuinfo), the mixed precision that pays on a device, and GPU memory: a batch that does not
fit is one clear message with a batch size that does, and the peak memory an epoch took.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import ConfigError


@functools.cache
def cpu_info(cpuinfo: str = "/proc/cpuinfo") -> dict[str, str]:
    """The first processor's fields of Linux's /proc/cpuinfo ({"model name": ..., "flags": ...});
    empty elsewhere (not Linux)."""
    try:
        lines = Path(cpuinfo).read_text().split("\n\n")[0].splitlines()
    except OSError:
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX512-BF16 or AMX): only there does bfloat16
    pay; other AVX-512 CPUs emulate it, slower than float32. Read from Linux's CPU flags."""
    flags = cpu_info().get("flags", "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision where it pays: on CUDA bfloat16 where the GPU computes it (Ampere and later:
    float32's range, so no loss scaling), else float16 (with a loss scaler); bfloat16 on a CPU
    with native bf16 (about 2x faster there); none elsewhere (MPS, and CPUs that would only
    emulate bfloat16)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and cpu_has_native_bf16():
        return torch.bfloat16
    return None


def prepare_device(device: torch.device) -> None:
    """On CUDA, let cuDNN time its convolution algorithms once per input shape and keep the fastest
    (`cudnn.benchmark`): training's shapes never change. The networks train in the NCHW layout on
    every device: on this project's CPUs channels_last was slower (1.11-1.23x, the bench's step
    rows), and beside instance norm it copies every norm's output twice; on a GPU it is not
    measured yet (the bench's step rows measure it)."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


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
