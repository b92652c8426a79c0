"""The game's health, read from a run's history: warnings when D wins outright or G collapses, and
a report in words and numbers of how the game between D and G went.
"""

from __future__ import annotations

import warnings

from ..settings import TrainConfig

HEALTH_EPOCHS = 3  # epochs in a row that a sign must show before train() warns


def warn_if_unhealthy(history: list[dict], config: TrainConfig, warned: set[str]) -> None:
    """Warn once each, in one line, when the last epochs show D winning outright (its loss near 0,
    real cut-outs scored near 1 and G's near 0: G then learns nothing from it) or G collapsed (the
    same matte whatever the photo, after it had learnt better). `warned`: the warnings given already."""
    last = history[-HEALTH_EPOCHS:]
    if len(last) < HEALTH_EPOCHS:
        return
    won = all(r["loss_d"] < 0.1 and r["d_real"] > 0.9 and r["d_fake"] < 0.1 for r in last)
    if won and config.adv_weight > 0 and "d" not in warned:
        warned.add("d")
        warnings.warn(
            f"D wins outright: loss {last[-1]['loss_d']:.3f} (log 2 = 0.693: cannot tell), real cut-outs scored "
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
    """How the game between D and G went, in words and the run's own numbers: D's loss against
    log 2 = 0.69 (a D that cannot tell), and its mean scores of real and of G's cut-outs. Three
    states: D won (loss near 0: G still gets a gradient from the non-saturating loss, but it pushes
    G towards whatever D looks at, not towards better cut-outs); D learnt nothing (loss near log 2,
    scores near 0.5: its verdicts carry no information, G's adversarial term is noise); in between,
    the healthy game: D tells real from fake often, and G keeps it from winning."""
    first, last = history[0], history[-1]
    low = min(row["loss_d"] for row in history)
    blind = abs(last["loss_d"] - 0.693) < 0.03 and abs(last["d_real"] - 0.5) < 0.03 and abs(last["d_fake"] - 0.5) < 0.03
    verdict = (
        "D won outright: G still gets a gradient from it, but one that points wherever D looks, not at better cut-outs"
        if last["loss_d"] < 0.1
        else "D learnt next to nothing: its loss is near log 2 and its scores near 0.5, so its verdicts carry "
        "almost no information and G's adversarial term is mostly noise"
        if blind
        else "D tells real from fake part of the time and never won outright: the game is alive"
        if low > 0.3
        else "D came close to winning at times, then G caught up"
    )
    return (
        f"D's loss: {first['loss_d']:.2f} at epoch {first['epoch']} (log 2 = 0.69: it cannot tell), lowest "
        f"{low:.2f}, {last['loss_d']:.2f} at epoch {last['epoch']}. It scored real cut-outs {last['d_real']:.2f} and "
        f"G's {last['d_fake']:.2f} on average in the last epoch (0.5 and 0.5: it cannot tell them apart). {verdict}."
    )
