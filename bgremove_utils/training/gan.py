"""The GAN itself: its two networks with their optimizers (`GAN`), and one training step,
`train_step`: the discriminator learns to tell the true cut-out from the generator's, both pasted
on the same new background, then the generator learns to fool it and to match the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..data.backgrounds import Backgrounds
from ..data.images import over
from ..data.photos import load_photos
from ..models.networks import DModel, GModel
from ..settings import TrainConfig
from .distributed import accumulating
from .hardware import amp_dtype
from .losses import discriminator_loss, generator_loss


@dataclass
class GAN:
    """The two networks, their optimizers, the (CUDA-only) AMP scaler, and the backgrounds D sees
    the cut-outs on, built from a config. `g_logits` and `d_logits` are what the training step
    calls: the plain networks' G.logits and D, or, under torchrun, the same wrapped in
    DistributedDataParallel (`g` and `d` stay plain, and are what checkpoints save)."""

    g: GModel
    d: DModel
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: bool
    backgrounds: Backgrounds
    g_logits: Callable = field(init=False)
    d_logits: Callable = field(init=False)

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
            backgrounds=Backgrounds(load_photos("train"), config.g.image_size),
        )

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=amp_dtype(self.device))


def train_step(photo: torch.Tensor, target: torch.Tensor, gan: GAN, config: TrainConfig) -> dict[str, float]:
    """One GAN update on a batch: photo (B, 3, H, W), target RGBA (B, 4, H, W).

    D judges cut-outs as a user sees them: pasted on a new background, the same one for the true
    cut-out and G's, so that nothing but the cut-out itself tells them apart. D learns first (G's
    output detached: this step must not change G), then G, through a frozen D, learns to fool it
    while matching the true matte and colours. With `grad_accum` k, the batch goes through in k
    parts whose gradients add up to the whole batch's: the same update in less memory."""
    background = gan.backgrounds.draw(len(photo)).to(photo.device, memory_format=torch.channels_last)
    k = min(config.grad_accum, len(photo))
    parts = list(zip(photo.tensor_split(k), target.tensor_split(k), background.tensor_split(k)))
    weights = [len(x) / len(photo) for x, _, _ in parts]  # each part's share of the batch's mean

    gan.opt_d.zero_grad(set_to_none=True)  # 1. D, on the true cut-outs and G's, detached
    logits, stats = [], {}
    for i, ((x, y, bg), w) in enumerate(zip(parts, weights)):
        with accumulating(gan.d_logits, last=i == k - 1), gan.autocast():
            with contextlib.nullcontext() if k == 1 else torch.no_grad():  # k parts: G runs again below
                logits.append(gan.g_logits(x))
            fake = torch.sigmoid(logits[-1]).detach()
            real_score, fake_score = gan.d_logits(torch.cat([x, x]), torch.cat([over(y, bg), over(fake, bg)])).chunk(2)
            loss_d = discriminator_loss(real_score, fake_score)
        gan.scaler.scale(loss_d * w).backward()
        _add(stats, w, loss_d=loss_d, d_real=torch.sigmoid(real_score).mean(), d_fake=torch.sigmoid(fake_score).mean())
    gan.scaler.step(gan.opt_d)

    gan.d.requires_grad_(False)  # 2. G, through D frozen: gradients flow into G only
    gan.opt_g.zero_grad(set_to_none=True)
    for i, ((x, y, bg), w) in enumerate(zip(parts, weights)):
        with accumulating(gan.g_logits, last=i == k - 1), gan.autocast():
            g_logits = logits[i] if k == 1 else gan.g_logits(x)
            judged = gan.d(x, over(torch.sigmoid(g_logits), bg))
            loss_g, terms = generator_loss(judged, g_logits, y, config.l1_weight, config.adv_weight)
        gan.scaler.scale(loss_g * w).backward()
        _add(stats, w, loss_g=loss_g, **terms)
    gan.scaler.step(gan.opt_g)
    gan.scaler.update()
    gan.d.requires_grad_(True)
    return stats


def _add(stats: dict[str, float], weight: float, **values) -> None:
    """Add each value (a tensor or a float) times `weight` to its running mean in `stats`."""
    for key, value in values.items():
        stats[key] = stats.get(key, 0.0) + weight * (value.detach().item() if torch.is_tensor(value) else value)
