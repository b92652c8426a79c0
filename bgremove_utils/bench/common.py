"""What every section of the benchmark shares: a row of the table and a timer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils.benchmark import Timer


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


def seconds_per_call(fn: Callable[[], object], n: int, warmup: int = 1) -> float:
    """Mean seconds of `n` calls of `fn` after `warmup` untimed ones, by torch.utils.benchmark's
    Timer (which waits for a GPU to finish) on torch's threads now."""
    timer = Timer("fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
    if warmup:
        timer.timeit(warmup)
    return timer.timeit(n).mean
