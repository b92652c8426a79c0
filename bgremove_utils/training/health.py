"""The game's health, read from a run's history: warnings when D wins outright or G collapses, and
a report in words and numbers of how the game between D and G went; and divergence, which stops a run.
"""

from __future__ import annotations

import math
import warnings

from ..settings import TrainConfig

HEALTH_EPOCHS = 3  # epochs in a row that a sign must show before train() warns
# Divergence: a loss not finite, or above DIVERGED_FACTOR x its first level, for DIVERGED_STEPS steps in a row.
# A healthy run's losses stay within about 10x of where they began (G's falls, D's moves around log 2 = 0.69);
# a learning rate of 1e6 takes them to 1e13 in a few steps. The first level is capped by each loss's scale
# (D's BCE: 1; G's: rec_weight + adv_weight, its terms' weights), so a run that diverged from its first
# epoch on is caught too. Not divergence: on CUDA float16, a step whose *gradients* overflow; the GradScaler
# skips it and lowers its scale, and the loss itself is finite. A diverged run has non-finite or exploding
# *losses*, step after step (bfloat16 on a CPU has no scaler: the same rule holds).
DIVERGED_FACTOR = 1000.0
DIVERGED_STEPS = 3
LOSSES = {"loss_g": "G's", "loss_d": "D's"}


BLIND = 0.65  # D's mean BCE over the last third above this (log 2 = 0.69): it learnt next to nothing


def _d_bce(row: dict) -> float:
    """D's BCE in an epoch's row (0.69: it cannot tell), whichever loss it was trained with."""
    return row.get("d_bce", row["loss_d"])


def warn_if_unhealthy(history: list[dict], config: TrainConfig, warned: set[str]) -> None:
    """Warn once each, in one line, when the last epochs show D winning outright (its loss near 0,
    real cut-outs scored near 1 and G's near 0: G then learns nothing from it) or G collapsed (the
    same matte whatever the photo, after it had learnt better). `warned`: the warnings given already."""
    last = history[-HEALTH_EPOCHS:]
    if len(last) < HEALTH_EPOCHS:
        return
    won = all("loss_d" in r and _d_bce(r) < 0.1 and r["d_real"] > 0.9 and r["d_fake"] < 0.1 for r in last)
    if won and config.adv_weight > 0 and "d" not in warned:
        warned.add("d")
        warnings.warn(
            f"D wins outright: loss {_d_bce(last[-1]):.3f} (log 2 = 0.693: cannot tell), real cut-outs scored "
            f"{last[-1]['d_real']:.2f} and G's {last[-1]['d_fake']:.2f} for {HEALTH_EPOCHS} epochs; "
            "G learns nothing from it: lower lr_d, or look for what tells real from fake besides the cut-out.",
            stacklevel=3,
        )
    learnt = any(r["val_alpha_spread"] > 0.05 for r in history[:-HEALTH_EPOCHS])  # it once told pictures apart
    if learnt and all(r["val_alpha_spread"] < 0.01 for r in last) and "g" not in warned:
        warned.add("g")
        warnings.warn(
            f"G collapsed: it draws the same matte whatever the photo for {HEALTH_EPOCHS} epochs; "
            "lower lr_g or adv_weight, or start again with another seed.",
            stacklevel=3,
        )


def game_report(history: list[dict]) -> str:
    """How the game between D and G went, in words and the run's own numbers: D's BCE against
    log 2 = 0.69 (a D that cannot tell), over the last third of training too, and its mean scores of
    real and of G's cut-outs. Three states: D won (loss near 0: G still gets a gradient from the
    non-saturating loss, but it pushes G towards whatever D looks at, not towards better cut-outs);
    D learnt nothing (loss near log 2, scores near 0.5: its verdicts carry no information, G's
    adversarial term is noise); in between, the healthy game: D tells real from fake often, and G
    keeps it from winning. "D learns" is said only when its loss over the last third is below BLIND.
    Epochs without D (a run resumed with another `adv_weight`) are left out."""
    played = [row for row in history if "loss_d" in row]
    if not played:
        return (
            f"No D: the {len(history)} epoch(s) trained G alone, by the reconstruction terms "
            "(adv_weight 0: no GAN, so no game to report)."
        )
    history, first, last = played, played[0], played[-1]
    low = min(_d_bce(row) for row in history)
    tail = history[len(history) - max(1, len(history) // 3) :]
    late = sum(_d_bce(row) for row in tail) / len(tail)
    blind = late > BLIND  # its scores may part a little, but a loss this close to log 2 says D tells almost nothing
    verdict = (
        "D won outright: G still gets a gradient from it, but one that points wherever D looks, not at better cut-outs"
        if _d_bce(last) < 0.1
        else "D learnt next to nothing: its loss is near log 2 and its scores near 0.5, so its verdicts carry "
        "almost no information and G's adversarial term is mostly noise"
        if blind
        else "D tells real from fake part of the time and never won outright: the game is alive"
        if low > 0.3
        else "D came close to winning at times, then G caught up"
    )
    return (
        f"D's loss: {_d_bce(first):.2f} at epoch {first['epoch']} (log 2 = 0.69: it cannot tell), lowest "
        f"{low:.2f}, {late:.2f} on average over the last third, {_d_bce(last):.2f} at epoch {last['epoch']}. "
        f"It scored real cut-outs {last['d_real']:.2f} and G's {last['d_fake']:.2f} on average in the last epoch "
        f"(a D that cannot tell them apart would score both 0.5). {verdict}."
    )


def _scale(config: TrainConfig) -> dict[str, float]:
    """Each loss's own scale: D's BCE about 1, G's the sum of its terms' weights (each term starts near 1)."""
    return {"loss_g": config.rec_weight + config.adv_weight, "loss_d": 1.0}


def _out_of_bounds(losses: dict[str, float], first: dict[str, float] | None, config: TrainConfig) -> str | None:
    """The first loss of `losses` that is not finite or above DIVERGED_FACTOR x its first level, in words."""
    scale = _scale(config)
    for key, name in LOSSES.items():
        value = losses.get(key)
        if value is None:  # a history of before this loss was recorded
            continue
        began = first.get(key) if first else None
        began = began if began is not None and math.isfinite(began) else None  # a history that began diverged
        level = min(abs(began), scale[key]) if began is not None else scale[key]
        if not math.isfinite(value):
            return f"{name} loss is {value}"
        if value > DIVERGED_FACTOR * max(level, 1e-3):
            return f"{name} loss is {value:.3g}" + (f", it began at {began:.3g}" if began is not None else "")
    return None


def diverged(history: list[dict], config: TrainConfig) -> str | None:
    """Where a run's history shows it diverged ("epoch 2: G's loss is nan"), or None: each epoch's
    mean losses against the first epoch's (capped by their scale), the rule the training loop applies
    step by step. What `ensure_checkpoint` reads to refuse a checkpoint of a diverged run."""
    first = history[0] if history else None
    for row in history:
        problem = _out_of_bounds(row, first if row is not first else None, config)
        if problem:
            return f"epoch {row['epoch']}: {problem}"
    return None


class DivergenceWatch:
    """Watches a run's losses step by step: `check(stats)` says why it diverged once DIVERGED_STEPS
    steps in a row were out of bounds, else None. The first level: the first epoch's means of the
    history (a resumed run), else this run's first finite step."""

    def __init__(self, config: TrainConfig, history: list[dict]):
        self.config = config
        self.first = {k: history[0].get(k) for k in LOSSES} if history else None
        self.in_a_row = 0

    def check(self, stats: dict[str, float]) -> str | None:
        losses = {k: stats[k] for k in LOSSES if k in stats}  # no D's loss before the game starts
        if self.first is None and all(math.isfinite(v) for v in losses.values()):
            self.first = losses
        problem = _out_of_bounds(losses, self.first, self.config)
        self.in_a_row = self.in_a_row + 1 if problem else 0
        return problem if self.in_a_row >= DIVERGED_STEPS else None

    def check_epoch(self, row: dict) -> str | None:
        """The same bounds on an epoch's mean losses: a run out of bounds at times, never for
        DIVERGED_STEPS steps in a row (or in an epoch of fewer steps), is caught here."""
        problem = _out_of_bounds(row, self.first, self.config)
        return f"epoch {row['epoch']}: {problem}" if problem else None
