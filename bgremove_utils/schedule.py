"""The learning-rate schedule of the `cpu` and `quick` profiles: one cycle, a warm-up then a long
anneal (as torch's OneCycleLR, without its cycling of Adam's beta1: the betas set are the betas
used). Resumed for more steps than planned, it anneals from where it was to the new end, instead
of jumping back up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

WARMUP = 0.15  # of the steps, the share that warms up
START, END = 1 / 25, 1 / 25 / 1e4  # the factor of the peak learning rate at the start and at the end


def _cosine(start: float, end: float, t: float) -> float:
    """From `start` at t = 0 to `end` at t = 1, along half a cosine."""
    return end + (start - end) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2


@dataclass
class OneCycle:
    """The factor of the peak learning rate at each step, for torch's LambdaLR, which saves this
    object's fields in its state_dict (so a checkpoint holds the schedule, stretched or not)."""

    total: int
    anneal_from: int = -1  # the step the anneal starts at: after the warm-up, or where a resumed run stretched it
    anneal_start: float = 1.0  # the factor there

    def __post_init__(self):
        if self.anneal_from < 0:
            self.anneal_from = max(1, round(WARMUP * self.total))

    def __call__(self, step: int) -> float:
        if step < self.anneal_from and self.anneal_start == 1.0:
            return _cosine(1.0, START, 1 - step / self.anneal_from)  # warming up
        span = max(1, self.total - self.anneal_from)
        return _cosine(self.anneal_start, END, (step - self.anneal_from) / span)

    def stretch(self, total: int, step: int) -> None:
        """Plan for `total` steps from `step` on: anneal from the factor now to the end at `total`."""
        if total != self.total:
            self.anneal_start, self.anneal_from, self.total = self(step), step, total


def one_cycle(optimizer: torch.optim.Optimizer, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR that follows `OneCycle(total)` from the optimizer's learning rate as the peak."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, OneCycle(total))
