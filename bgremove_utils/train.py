"""Training the GAN on any device: `train` runs the epochs of `gan.train_step` with progress bars,
validation, sample pictures and atomic, resumable checkpoints, in one process or, under torchrun,
in several with DistributedDataParallel (see distributed.py); it watches the GAN's health.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import restore_training, save_checkpoint, training_state
from .config import TrainConfig, make_config, resolve_device, with_settings
from .data import Loaders, check_batch_size, make_loaders
from .distributed import Process
from .gan import GAN, amp_dtype, train_step
from .memory import fitting_batch, free_cached, out_of_memory, peak_gib, start_peak
from .metrics import composite, evaluate
from .models import GModel
from .paths import default_checkpoint_dir
from .schedule import one_cycle

__all__ = ["GAN", "amp_dtype", "train", "train_epoch", "train_step"]


def _schedulers(gan: GAN, config: TrainConfig, steps_per_epoch: int) -> list:
    if config.lr_schedule != "onecycle":
        return []
    return [one_cycle(opt, config.epochs * steps_per_epoch) for opt in (gan.opt_g, gan.opt_d)]


def save_samples(g: GModel, photo: torch.Tensor, target: torch.Tensor, path: Path) -> None:
    """A picture of a few validation images: photo | prediction | truth, cut-outs over grey."""
    pred = g.predict(photo)
    rows = [photo, composite(photo, pred[:, 3:]), composite(target[:, :3], target[:, 3:])]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat(rows, dim=0), path, nrow=len(photo))


def train(
    config: TrainConfig | None = None,
    *,
    profile: str | None = None,
    resume: bool = False,
    loaders: Loaders | None = None,
    progress: bool = True,
    **overrides,
) -> list[dict]:
    """Train GModel and DModel; return the per-epoch history (also saved as history.json).

    `config` or `profile` ("full", "cpu", "quick"; default from $BGREMOVE_PROFILE or the device)
    sets everything; any setting can be overridden by its name, e.g.
    `train(profile="quick", epochs=3, checkpoint_dir="ckpt")`. Checkpoints go to
    `checkpoint_dir/last.pt` every epoch and `best.pt` on the best validation IoU; `resume=True`
    carries on from `last.pt`. Ctrl-C stops cleanly and returns the history so far. Under
    torchrun, each process trains on its part of the data and only rank 0 writes."""
    with distributed.quiet_unless_main():  # under torchrun, each message once (from rank 0)
        config = make_config(profile, **overrides) if config is None else with_settings(config, **overrides)
    with distributed.process(resolve_device(config.device)) as proc:
        ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else default_checkpoint_dir()
        gan = GAN.build(config, proc.device)
        if loaders is None:
            with distributed.quiet_unless_main():
                check_batch_size(config.data)
                loaders = make_loaders(config.data, config.g.image_size)
        fixed = [t[:6].to(proc.device) for t in next(iter(loaders.val))]  # the sample pictures, each time the same
        loaders = proc.shard(loaders, config.seed)
        schedulers = _schedulers(gan, config, len(loaders.train))
        if loaders.train.generator is not None:
            loaders.train.generator.manual_seed(config.seed)  # the same shuffling for the same seed, run after run
        history, best_iou, start, warned = [], -1.0, 0, set()
        if resume and proc.exists(ckpt_dir / "last.pt"):  # last.pt: it has the RNG states
            history, best_iou, start = restore_training(ckpt_dir / "last.pt", gan, schedulers, loaders, config)
        gan.g_logits, gan.d_logits = proc.wrap(gan.g, gan.d)  # after restoring: all processes start alike

        bar = tqdm(  # moved on by hand after each epoch, so that "k/N" shows epoch k's own numbers
            desc=f"{config.profile} on {proc.device.type}" + (f" x{proc.world_size}" if proc.ddp else ""),
            disable=not (progress and proc.is_main),
            initial=start,
            total=config.epochs,
            unit="epoch",
        )
        try:
            for epoch in range(start, config.epochs):
                row = train_epoch(gan, config, loaders, schedulers, epoch, proc, progress)
                row["val_alpha_spread"] = gan.g.predict(fixed[0])[:, 3].mean((1, 2)).std().item()
                history.append(row)
                improved, best_iou = row["val_iou"] > best_iou, max(best_iou, row["val_iou"])
                if proc.is_main:
                    warn_if_unhealthy(history, config, warned)
                    state = training_state(gan, schedulers, loaders, config, epoch + 1, history, best_iou)
                    save_epoch(state, improved, ckpt_dir, gan.g, fixed, config)
                proc.barrier()  # the checkpoint is complete before any process goes on
                bar.update()
                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("loss_g", "loss_d", "val_iou")})
        except KeyboardInterrupt:
            if proc.is_main:
                print(f"\nTraining interrupted after {len(history)} epoch(s); the last checkpoint is in {ckpt_dir}.")
        finally:
            bar.close()
        if history and proc.is_main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
            peaks = [row["peak_gib"] for row in history if row.get("peak_gib") is not None]
            if peaks and progress:
                print(
                    f"peak GPU memory: {max(peaks):.2f} GiB (batch {config.data.batch_size}, {config.g.image_size} px)"
                )
        return history


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


def save_epoch(state: dict, improved: bool, ckpt_dir: Path, g: GModel, fixed: list, config: TrainConfig) -> None:
    """After an epoch: last.pt; best.pt when the validation IoU is the best yet (`improved`);
    every `sample_every` epochs (and at the last) a picture of the fixed validation predictions."""
    save_checkpoint(state, ckpt_dir / "last.pt")
    if improved:
        save_checkpoint(state, ckpt_dir / "best.pt")
    epoch = state["epoch"]
    if config.sample_every and (epoch % config.sample_every == 0 or epoch == config.epochs):
        save_samples(g, *fixed, ckpt_dir / "samples" / f"epoch_{epoch:03d}.png")


def train_epoch(
    gan: GAN, config: TrainConfig, loaders: Loaders, schedulers: list, epoch: int, proc: Process, progress: bool
) -> dict:
    """One pass over the training data, then validation: one history row (the same on every process)."""
    start, sums, n, seen = time.perf_counter(), {}, 0, 0
    proc.start_epoch(loaders.train, epoch, config.seed)
    start_peak(gan.device)
    gan.g.train()
    gan.d.train()
    for photo, target in tqdm(loaders.train, desc=f"epoch {epoch + 1}", leave=False, disable=not progress):
        photo = photo.to(gan.device, non_blocking=True, memory_format=torch.channels_last)
        target = target.to(gan.device, non_blocking=True, memory_format=torch.channels_last)
        for key, value in _step(photo, target, gan, config).items():
            sums[key] = sums.get(key, 0.0) + value
        n, seen = n + 1, seen + len(photo)
        for scheduler in schedulers:
            scheduler.step()
    means = proc.mean(sums, n)  # over every process's steps
    proc.log_indices(loaders.train.sampler, seen, epoch)
    val = evaluate(gan.g, loaders.val, gan.device, baseline=False)["model"]  # torchmetrics syncs across processes
    row = {"epoch": epoch + 1, **means, "lr_g": gan.opt_g.param_groups[0]["lr"]}
    row |= {f"val_{key}": value for key, value in val.items()} | {"seconds": time.perf_counter() - start}
    return row | ({"peak_gib": peak_gib(gan.device)} if gan.device.type == "cuda" else {})


def game_report(history: list[dict]) -> str:
    """How the game between D and G went, in words and the run's own numbers: D's loss against
    log 2 = 0.69 (a D that cannot tell), and its mean scores of real and of G's cut-outs."""
    first, last = history[0], history[-1]
    low = min(row["loss_d"] for row in history)
    verdict = (
        "D won outright: G learnt nothing from it at the end"
        if last["loss_d"] < 0.1
        else "D never won outright: its loss stayed well above 0, so G kept getting a gradient from it"
        if low > 0.3
        else "D came close to winning at times, then G caught up"
    )
    return (
        f"D's loss: {first['loss_d']:.2f} at epoch {first['epoch']} (log 2 = 0.69: it cannot tell), lowest "
        f"{low:.2f}, {last['loss_d']:.2f} at epoch {last['epoch']}. It scored real cut-outs {last['d_real']:.2f} and "
        f"G's {last['d_fake']:.2f} on average in the last epoch (0.5 and 0.5: it cannot tell them apart). {verdict}."
    )


def _step(photo: torch.Tensor, target: torch.Tensor, gan: GAN, config: TrainConfig) -> dict[str, float]:
    """`train_step`; a batch that does not fit in the GPU's memory ends training with one clear
    error that says which batch size fits (found by trying smaller ones, in one part each)."""
    try:
        return train_step(photo, target, gan, config)
    except torch.OutOfMemoryError:
        free_cached()
        one_part = replace(config, grad_accum=1)
        fits = fitting_batch(lambda size: train_step(photo[:size], target[:size], gan, one_part), len(photo))
        raise out_of_memory(len(photo), fits, gan.device) from None
