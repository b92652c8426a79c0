"""The GAN itself: its two networks with their optimizers (`GAN`), and one training step,
`train_step`: the discriminator learns to tell the true cut-out from the generator's, both pasted
on the same new background, then the generator learns to fool it and to match the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..data.backgrounds import Backgrounds
from ..data.images import over
from ..data.photos import load_photos
from ..models.networks import DModel, GModel
from ..settings import TrainConfig
from .distributed import accumulating
from .hardware import amp_dtype, prepare_device
from .losses import discriminator_loss, generator_loss, reconstruction_losses

Stats = dict[str, torch.Tensor]  # a step's numbers, 0-d tensors on the device: read (.item()) once in a while


@dataclass
class GAN:
    """The two networks, their optimizers, a loss scaler for each (float16 only: G's loss is about a
    hundred times D's, and one scale cannot suit both), and the backgrounds D sees the cut-outs on,
    drawn on the training device, built from a config. Without the adversarial term (`adv_weight`
    0) there is no D: `d` and `opt_d` are None and G trains alone. `g_logits` and `d_logits` are
    what the training step calls: the plain networks' G.logits and D, or, under torchrun, the same
    wrapped in DistributedDataParallel (`g` and `d` stay plain, and are what checkpoints save)."""

    g: GModel
    d: DModel | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    device: torch.device
    dtype: torch.dtype | None  # autocast's: bfloat16 or float16, None for float32
    backgrounds: Backgrounds
    g_logits: Callable = field(init=False)
    d_logits: Callable | None = field(init=False)

    def __post_init__(self):
        self.g_logits, self.d_logits = self.g.logits, self.d

    @classmethod
    def build(cls, config: TrainConfig, device: torch.device) -> GAN:
        torch.manual_seed(config.seed)
        prepare_device(device)
        g = GModel(config.g).to(device)
        d = DModel(config.d).to(device) if config.adv_weight > 0 else None
        dtype = amp_dtype(device) if config.amp else None
        scaled = dtype == torch.float16  # bfloat16 has float32's range: nothing to scale
        return cls(
            g=g,
            d=d,
            opt_g=torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=config.betas),
            opt_d=torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=config.betas) if d is not None else None,
            scaler_g=torch.amp.GradScaler(device.type, enabled=scaled),
            scaler_d=torch.amp.GradScaler(device.type, enabled=scaled),
            device=device,
            dtype=dtype,
            backgrounds=Backgrounds(load_photos("train"), config.g.image_size).to(device),
        )

    def autocast(self):
        """Mixed precision in `dtype` for the block, or nothing in float32."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def train_step(
    photo: Tensor, target: Tensor, background: Tensor, gan: GAN, config: TrainConfig, measure_share: bool = False
) -> Stats:
    """One GAN update on photos (B, 3, H, W), their true cut-outs (B, 4, H, W) and the backgrounds
    (B, 3, H, W) D sees both cut-outs on, the true one's and G's, so that only the cut-out tells them
    apart. D learns first (G's output detached), then G through a frozen D: fool it, match the truth.
    Without D (`adv_weight` 0) only G's half runs; `grad_accum` k: k parts, one update. `measure_share`:
    also `adv_share` (`adversarial_share`). Returns 0-d tensors on the device: reading them waits."""
    k = min(config.grad_accum, len(photo))
    parts = list(zip(photo.tensor_split(k), target.tensor_split(k), background.tensor_split(k)))
    stats: Stats = {}
    logits = [None] * k  # G's logits of each part from D's half, reused by G's half when the batch is one part

    if gan.d is not None:  # 1. D, on the true cut-outs and G's, detached
        gan.opt_d.zero_grad(set_to_none=True)
        for i, (x, y, bg) in enumerate(parts):
            with accumulating(gan.d_logits, last=i == k - 1), gan.autocast():
                with contextlib.nullcontext() if k == 1 else torch.no_grad():  # k parts: G runs again below
                    logits[i] = gan.g_logits(x)
                fake = torch.sigmoid(logits[i]).detach()
                scores = gan.d_logits(torch.cat([x, x]), torch.cat([over(y, bg), over(fake, bg)]))
                real_score, fake_score = scores.chunk(2)
                loss_d = discriminator_loss(real_score, fake_score)
            gan.scaler_d.scale(loss_d * len(x) / len(photo)).backward()
            _add(stats, len(x) / len(photo), loss_d=loss_d, **d_readings(real_score, fake_score))
        gan.scaler_d.step(gan.opt_d)
        gan.scaler_d.update()

    gan.opt_g.zero_grad(set_to_none=True)  # 2. G, through D frozen: gradients flow into G only
    with frozen(gan.d):
        for i, (x, y, bg) in enumerate(parts):
            with accumulating(gan.g_logits, last=i == k - 1), gan.autocast():
                g_logits = logits[i] if k == 1 and logits[i] is not None else gan.g_logits(x)
                loss_g, terms = generator_terms(gan.d, x, g_logits, y, bg, config)
            if measure_share and i == 0 and "g_adv" in terms:
                stats["adv_share"] = adversarial_share(loss_g, config.adv_weight * terms["g_adv"], gan.g.head.weight)
            gan.scaler_g.scale(loss_g * len(x) / len(photo)).backward()
            _add(stats, len(x) / len(photo), loss_g=loss_g, **terms)
    gan.scaler_g.step(gan.opt_g)
    gan.scaler_g.update()
    return stats


def generator_terms(
    d: DModel | None, x: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, bg: torch.Tensor, config: TrainConfig
) -> tuple[torch.Tensor, Stats]:
    """G's loss for its `logits` of the photos `x`, whose true cut-outs are `y`: `generator_loss`
    of D's verdict on G's cut-outs pasted on the backgrounds `bg` (not detached: D's verdict
    reaches G) and of the reconstruction; without D, `rec_weight` x the reconstruction terms
    alone. Returns (the loss, its terms unweighted, for the history)."""
    if d is None:
        terms = reconstruction_losses(logits, y)
        return config.rec_weight * sum(terms.values()), terms
    judged = d(x, over(torch.sigmoid(logits), bg))
    return generator_loss(judged, logits, y, config.rec_weight, config.adv_weight)


@contextlib.contextmanager
def frozen(network: torch.nn.Module | None):
    """`network`'s weights take no gradient inside the block (`requires_grad_(False)`), and take
    them again after it, also when the block fails (a batch out of memory: the retry needs D).
    None (no D): nothing to freeze."""
    if network is None:
        yield None
        return
    network.requires_grad_(False)
    try:
        yield network
    finally:
        network.requires_grad_(True)


def adversarial_share(loss: torch.Tensor, from_d: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
    """How much D's term (`from_d`, the weighted adversarial term) moves G against the rest of its
    `loss` (the reconstruction terms): the ratio of the norms of the gradients each sends to G's
    last layer (`head`, its weight). 0.01: the GAN is noise beside L1; 1: as strong as it. Two
    backward passes as far as that layer only: cheap enough to measure every few steps."""
    (pull_d,) = torch.autograd.grad(from_d.float(), head, retain_graph=True)
    (pull_rec,) = torch.autograd.grad((loss - from_d).float(), head, retain_graph=True)
    return pull_d.norm() / pull_rec.norm().clamp_min(1e-12)


def d_readings(real_score: torch.Tensor, fake_score: torch.Tensor) -> Stats:
    """What D says, for the history: its mean probabilities of real (the true cut-outs) and of
    fake (G's). Chance: 0.5 both."""
    return {"d_real": torch.sigmoid(real_score.float()).mean(), "d_fake": torch.sigmoid(fake_score.float()).mean()}


def _add(stats: Stats, weight: float, **values: torch.Tensor) -> None:
    """Add each value times `weight` to its running mean in `stats`, detached and on the device."""
    for key, value in values.items():
        stats[key] = stats.get(key, 0.0) + weight * value.detach().float()
