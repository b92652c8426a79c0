"""Training the GAN on any device: `train_step` updates D then G on one batch; `train` runs the
epochs with progress bars, validation, sample pictures and atomic, resumable checkpoints, in one
process or, under torchrun, in several with DistributedDataParallel (see distributed.py).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.utils import save_image
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import restore_training, save_checkpoint, training_state
from .config import TrainConfig, make_config, resolve_device, with_settings
from .data import Loaders, check_batch_size, make_loaders
from .distributed import Process
from .losses import discriminator_loss, generator_loss
from .metrics import composite, evaluate
from .models import DModel, GModel
from .paths import default_checkpoint_dir


@dataclass
class GAN:
    """The two networks, their optimizers and the (CUDA-only) AMP scaler, built from a config.
    `g_logits` and `d_logits` are what the training step calls: the plain networks' G.logits and
    D, or, under torchrun, the same wrapped in DistributedDataParallel (`g` and `d` stay plain,
    and are what checkpoints save: no `module.` prefixes)."""

    g: GModel
    d: DModel
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: bool
    g_logits: Callable = None
    d_logits: Callable = None

    def __post_init__(self):
        self.g_logits, self.d_logits = self.g.logits, self.d

    @classmethod
    def build(cls, config: TrainConfig, device: torch.device) -> GAN:
        torch.manual_seed(config.seed)
        # channels_last: the memory layout oneDNN and cuDNN convolutions run fastest on
        g = GModel(config.g).to(device, memory_format=torch.channels_last)
        d = DModel(config.d).to(device, memory_format=torch.channels_last)
        amp = config.amp and amp_dtype(device) is not None
        return cls(
            g=g,
            d=d,
            opt_g=torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=config.betas),
            opt_d=torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=config.betas),
            scaler=torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
            device=device,
            amp=amp,
        )

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=amp_dtype(self.device))


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed precision where it pays: float16 on CUDA, bfloat16 on a CPU with native bf16
    (AVX512-BF16 or AMX; about 2x faster there), none elsewhere (MPS, older CPUs)."""
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return torch.bfloat16
    return None


def train_step(photo: torch.Tensor, target: torch.Tensor, gan: GAN, config: TrainConfig) -> dict[str, float]:
    """One GAN update on a batch: photo (B, 3, H, W), target RGBA (B, 4, H, W).

    First D learns to tell the true cut-out from G's (G's output detached: this step must not
    change G), then G learns to fool D while matching the true matte and colours. Real and fake
    go through D as one batch (D normalises each picture alone, so nothing mixes): one forward,
    one backward, as DistributedDataParallel needs."""
    d, scaler = gan.d, gan.scaler
    with gan.autocast():
        logits = gan.g_logits(photo)  # (B, 4, H, W)
        fake = torch.sigmoid(logits)
        both = gan.d_logits(torch.cat([photo, photo]), torch.cat([target, fake.detach()]))  # (2B, 1, h, w)
        loss_d = discriminator_loss(*both.chunk(2))
    gan.opt_d.zero_grad(set_to_none=True)
    scaler.scale(loss_d).backward()
    scaler.step(gan.opt_d)

    # G's step: gradients flow through D into G, D's weights stay (plain D: no DDP sync to wait for)
    d.requires_grad_(False)
    with gan.autocast():
        loss_g, parts = generator_loss(d(photo, fake), logits, target, config.l1_weight, config.adv_weight)
    gan.opt_g.zero_grad(set_to_none=True)
    scaler.scale(loss_g).backward()
    scaler.step(gan.opt_g)
    scaler.update()
    d.requires_grad_(True)
    return {"loss_d": loss_d.item(), "loss_g": loss_g.item(), **parts}


def _schedulers(gan: GAN, config: TrainConfig, steps_per_epoch: int) -> list:
    if config.lr_schedule != "onecycle":
        return []
    total = config.epochs * steps_per_epoch
    return [
        torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.15)
        for opt, lr in ((gan.opt_g, config.lr_g), (gan.opt_d, config.lr_d))
    ]


@torch.no_grad()
def save_samples(g: GModel, photo: torch.Tensor, target: torch.Tensor, path: Path) -> None:
    """A picture of a few validation images: photo | prediction | truth, cut-outs over grey."""
    g.eval()
    pred = g(photo)
    g.train()
    rows = [photo, composite(photo, pred[:, 3:].float()), composite(target[:, :3], target[:, 3:])]
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
        history, best_iou, start = [], -1.0, 0
        if resume and proc.exists(ckpt_dir / "last.pt"):  # last.pt: it has the RNG states
            history, best_iou, start = restore_training(ckpt_dir / "last.pt", gan, schedulers, loaders, config)
        gan.g_logits, gan.d_logits = proc.wrap(gan.g, gan.d)  # after restoring: all processes start alike

        epochs = tqdm(
            range(start, config.epochs),
            desc=f"{config.profile} on {proc.device.type}" + (f" x{proc.world_size}" if proc.ddp else ""),
            disable=not (progress and proc.is_main),
            initial=start,
            total=config.epochs,
            unit="epoch",
        )
        try:
            for epoch in epochs:
                row = train_epoch(gan, config, loaders, schedulers, epoch, proc, progress)
                history.append(row)
                improved, best_iou = row["val_iou"] > best_iou, max(best_iou, row["val_iou"])
                if proc.is_main:
                    state = training_state(gan, schedulers, loaders, config, epoch + 1, history, best_iou)
                    save_epoch(state, improved, ckpt_dir, gan.g, fixed, config)
                proc.barrier()  # the checkpoint is complete before any process goes on
                epochs.set_postfix({k: f"{row[k]:.3f}" for k in ("loss_g", "loss_d", "val_iou")})
        except KeyboardInterrupt:
            if proc.is_main:
                print(f"\nTraining interrupted after {len(history)} epoch(s); the last checkpoint is in {ckpt_dir}.")
        finally:
            epochs.close()
        if history and proc.is_main:
            ckpt_dir.mkdir(parents=True, exist_ok=True)
            (ckpt_dir / "history.json").write_text(json.dumps(history, indent=1))
        return history


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
    gan.g.train()
    gan.d.train()
    for photo, target in tqdm(loaders.train, desc=f"epoch {epoch + 1}", leave=False, disable=not progress):
        photo = photo.to(gan.device, non_blocking=True, memory_format=torch.channels_last)
        target = target.to(gan.device, non_blocking=True, memory_format=torch.channels_last)
        for key, value in train_step(photo, target, gan, config).items():
            sums[key] = sums.get(key, 0.0) + value
        n, seen = n + 1, seen + len(photo)
        for scheduler in schedulers:
            scheduler.step()
    means = proc.mean(sums, n)  # over every process's steps
    proc.log_indices(loaders.train.sampler, seen, epoch)
    val = evaluate(gan.g, loaders.val, gan.device, baseline=False)["model"]  # torchmetrics syncs across processes
    row = {"epoch": epoch + 1, **means}
    row.update(val_iou=val["iou"], val_mae=val["mae"], val_psnr=val["psnr"], seconds=time.perf_counter() - start)
    return row
