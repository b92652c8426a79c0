"""What every section of the benchmark shares: a row of the table and a timer."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import torch


@dataclass
class Row:
    """One line of the table: our figure beside the plain baseline's; ratio > 1: ours is better."""

    name: str
    unit: str
    ours: float | None
    plain: float | None = None
    higher_is_better: bool = True
    target: str = ""
    met: bool | None = None
    note: str = ""

    def to_dict(self) -> dict:
        ratio = None
        if self.ours and self.plain:
            ratio = self.ours / self.plain if self.higher_is_better else self.plain / self.ours
        return {**asdict(self), "ratio": ratio}


def median_time(fn, n: int, device: torch.device | None = None, warmup: int = 1) -> float:
    """Median seconds of `n` calls of `fn` after `warmup` untimed ones (on CUDA, until the GPU is done)."""
    sync = torch.cuda.synchronize if device is not None and device.type == "cuda" else lambda: None
    times = []
    for _ in range(warmup + n):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times[warmup:])
