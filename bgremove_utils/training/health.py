"""The game's health, read from a run's history: warnings when D wins outright or G collapses, and
a report in words and numbers of how the game between D and G went.
"""

from __future__ import annotations

import warnings

from ..settings import TrainConfig

HEALTH_EPOCHS = 3  # epochs in a row that a sign must show before train() warns


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
    won = all(_d_bce(r) < 0.1 and r["d_real"] > 0.9 and r["d_fake"] < 0.1 for r in last)
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
    log 2 = 0.69 (a D that cannot tell), over the last third of training too, and its mean scores
    of real and of G's cut-outs. "D learns" is said only when its loss left log 2."""
    first, last = history[0], history[-1]
    low = min(_d_bce(row) for row in history)
    tail = history[len(history) - max(1, len(history) // 3) :]
    late = sum(_d_bce(row) for row in tail) / len(tail)
    verdict = (
        "D won outright: G learnt nothing from it at the end"
        if _d_bce(last) < 0.1
        else "D learnt nothing: its loss stayed near log 2, so its gradient to G carried no information"
        if late > 0.65
        else "D learnt to tell them apart without winning: G kept getting an informative gradient from it"
        if low > 0.3
        else "D came close to winning at times, then G caught up"
    )
    return (
        f"D's loss: {_d_bce(first):.2f} at epoch {first['epoch']} (log 2 = 0.69: it cannot tell), lowest "
        f"{low:.2f}, {late:.2f} on average over the last third, {_d_bce(last):.2f} at epoch {last['epoch']}. "
        f"It scored real cut-outs {last['d_real']:.2f} and G's {last['d_fake']:.2f} on average in the last epoch "
        f"(0.5 and 0.5: it cannot tell them apart). {verdict}."
    )
