"""Training the GAN on any device: `train` runs the epochs of `gan.train_step` with progress bars,
validation, sample pictures and atomic, resumable checkpoints, in one process or, under torchrun,
in several with DistributedDataParallel (see distributed.py); it watches the GAN's health (health.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.optim.lr_scheduler import OneCycleLR
from torchvision.utils import save_image
from tqdm.auto import tqdm

from ..data.dataset import Loaders, make_loaders
from ..data.sample import make_sample
from ..evaluation.metrics import composite, evaluate
from ..models.checkpoint import save_checkpoint
from ..models.networks import GModel
from ..paths import default_checkpoint_dir
from ..settings import (
    BEST_CHECKPOINT,
    HISTORY_FILE,
    LAST_CHECKPOINT,
    TrainConfig,
    make_config,
    resolve_device,
    with_settings,
)
from . import distributed
from .distributed import Process
from .gan import GAN, train_step
from .hardware import fitting_batch, free_cached, out_of_memory, peak_gib, start_peak
from .health import warn_if_unhealthy
from .losses import reconstruction_losses
from .state import restore_training, training_state

WARMUP = 0.15  # of a one-cycle schedule's steps, the share that warms up (from 1/25 of the peak)


def one_cycle(optimizer: torch.optim.Optimizer, peak: float, steps: int, saved: dict | None = None) -> OneCycleLR:
    """torch's OneCycleLR over `steps`: a warm-up from peak / 25 to `peak`, then a cosine anneal to
    peak / 25 / 1e4, Adam's betas left as set. `saved`: a checkpoint's schedule, carried on when it
    was planned for as many steps; a run resumed for more epochs gets a new cycle over the steps
    left instead, so that they learn (a finished cycle would go on at its last, near-zero rate)."""
    schedule = OneCycleLR(  # one point more than steps: the rate after the last step is the end's
        optimizer, peak, total_steps=steps + 1, pct_start=WARMUP, cycle_momentum=False, final_div_factor=1e4
    )
    if saved is not None and saved.get("total_steps") == steps + 1:
        schedule.load_state_dict(saved)
        for group, lr in zip(optimizer.param_groups, schedule.get_last_lr()):
            group["lr"] = lr  # where the saved run was, not the new schedule's start
    return schedule


def _schedulers(gan: GAN, config: TrainConfig, steps_per_epoch: int, start: int, saved: list) -> list:
    """The one-cycle schedules of G's and D's optimizers for the epochs from `start` on."""
    if config.lr_schedule != "onecycle":
        return []
    total, done = config.epochs * steps_per_epoch, start * steps_per_epoch
    saved = saved or [None, None]
    if saved[0] is not None and saved[0].get("total_steps") != total + 1:  # planned for fewer epochs: a new cycle
        total, saved = total - done, [None, None]
    pairs = zip((gan.opt_g, gan.opt_d), (config.lr_g, config.lr_d), saved)
    return [one_cycle(opt, lr, total, state) for opt, lr, state in pairs]


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
                data = config.data if config.data.names_source() else replace(config.data, data_root=str(make_sample()))
                loaders = make_loaders(data, config.g.image_size)
        fixed = [t[:6].to(proc.device) for t in next(iter(loaders.val))]  # the sample pictures, each time the same
        loaders = proc.shard(loaders, config.seed)
        if loaders.train.generator is not None:
            loaders.train.generator.manual_seed(config.seed)  # the same shuffling for the same seed, run after run
        history, best_iou, start, saved_schedules, warned = [], -1.0, 0, [], set()
        if resume and proc.exists(ckpt_dir / LAST_CHECKPOINT):  # last.pt: it has the RNG states
            history, best_iou, start, saved_schedules = restore_training(
                ckpt_dir / LAST_CHECKPOINT, gan, loaders, config
            )
        schedulers = _schedulers(gan, config, len(loaders.train), start, saved_schedules)
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
            if progress:  # the bars are widgets that a saved notebook may show as "0%": this line stays
                print(summary_line(history, config.profile, proc.device.type))
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            (ckpt_dir / HISTORY_FILE).write_text(json.dumps(history, indent=1))
            peaks = [row["peak_gib"] for row in history if row.get("peak_gib") is not None]
            if peaks and progress:
                print(
                    f"peak GPU memory: {max(peaks):.2f} GiB (batch {config.data.batch_size}, {config.g.image_size} px)"
                )
        return history


def summary_line(history: list[dict], profile: str, device: str) -> str:
    """One line on a finished (or stopped) run: its epochs, their time, the last epoch's numbers."""
    last, seconds = history[-1], sum(row["seconds"] for row in history)
    return (
        f"{profile} on {device}: epochs {history[0]['epoch']}-{last['epoch']} in {seconds:.0f} s; last epoch: "
        f"G loss {last['loss_g']:.2f}, D loss {last['loss_d']:.3f}, "
        f"validation loss {last.get('val_loss', float('nan')):.3f}, "
        f"validation IoU {last['val_iou']:.3f}"
    )


def save_epoch(state: dict, improved: bool, ckpt_dir: Path, g: GModel, fixed: list, config: TrainConfig) -> None:
    """After an epoch: last.pt; best.pt when the validation IoU is the best yet (`improved`);
    every `sample_every` epochs (and at the last) a picture of the fixed validation predictions."""
    save_checkpoint(state, ckpt_dir / LAST_CHECKPOINT)
    if improved:
        save_checkpoint(state, ckpt_dir / BEST_CHECKPOINT)
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
    val["loss"] = proc.mean(*validation_loss(gan.g, loaders.val, gan.device))["loss"]
    row = {"epoch": epoch + 1, **means, "lr_g": gan.opt_g.param_groups[0]["lr"]}
    row |= {f"val_{key}": value for key, value in val.items()} | {"seconds": time.perf_counter() - start}
    return row | ({"peak_gib": peak_gib(gan.device)} if gan.device.type == "cuda" else {})


@torch.no_grad()
def validation_loss(g: GModel, loader, device: torch.device) -> tuple[dict[str, float], int]:
    """The reconstruction loss (its four terms summed, as G's loss has them before `l1_weight`) of
    `loader`'s pictures, summed over them, and their count: the history's `val_loss` is their mean,
    to set beside the same terms on the training batches (a gap that grows is overfitting)."""
    g.eval()
    total, n = 0.0, 0
    for photo, target in loader:
        photo, target = photo.to(device), target.to(device)
        total += sum(reconstruction_losses(g.logits(photo), target).values()).item() * len(photo)
        n += len(photo)
    g.train()
    return {"loss": total}, n


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
