"""The GAN itself: its two networks with their optimizers (`GAN`), and one training step,
`train_step`: the discriminator learns to tell the true cut-out from the generator's, both pasted
on the same new background, then the generator learns to fool it and to match the truth.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..data.backgrounds import Backgrounds
from ..data.images import over
from ..data.photos import load_photos
from ..data.unlabelled import unlabelled_photos
from ..models.networks import DModel, GModel
from ..settings import TrainConfig
from .distributed import accumulating
from .hardware import amp_dtype, layout_of, memory_format
from .losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    r1_penalty,
    reconstruction_losses,
    scales,
)


@dataclass
class GAN:
    """The two networks, their optimizers, the (CUDA-only) AMP scaler, and the backgrounds D sees
    the cut-outs on, built from a config. `g_logits` and `d_logits` are what the training step
    calls: the plain networks' G.logits and D, or, under torchrun, the same wrapped in
    DistributedDataParallel (`g` and `d` stay plain, and are what checkpoints save). `unlabelled`
    serves photos without mattes (None: none); `ema` is the moving average of G's weights (None:
    off); `steps` counts D's updates (for the lazy R1)."""

    g: GModel
    d: DModel
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: bool
    backgrounds: Backgrounds
    unlabelled: Backgrounds | None = None
    ema: AveragedModel | None = None
    steps: int = 0
    g_logits: Callable = field(init=False)
    d_logits: Callable = field(init=False)

    def __post_init__(self):
        self.g_logits, self.d_logits = self.g.logits, self.d

    @property
    def generator(self) -> GModel:
        """The generator to validate, save as best.pt and export: G's moving average when there is one."""
        return self.ema.module if self.ema is not None else self.g

    @classmethod
    def build(cls, config: TrainConfig, device: torch.device) -> GAN:
        torch.manual_seed(config.seed)
        layout = memory_format(device)
        g = GModel(config.g).to(device, memory_format=layout)
        d = DModel(config.d).to(device, memory_format=layout)
        amp = config.amp and amp_dtype(device) is not None
        size = config.g.image_size
        return cls(
            g=g,
            d=d,
            opt_g=torch.optim.Adam(g.parameters(), lr=config.lr_g, betas=config.betas),
            opt_d=torch.optim.Adam(d.parameters(), lr=config.lr_d, betas=config.betas),
            scaler=torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda"),
            device=device,
            amp=amp,
            backgrounds=Backgrounds(load_photos("train"), size),
            unlabelled=unlabelled_photos(config.unlabelled, size) if config.unlabelled and config.adv_weight else None,
            ema=AveragedModel(g, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay)) if config.ema_decay else None,
        )

    def draw_unlabelled(self, n: int, like: torch.Tensor) -> torch.Tensor | None:
        """n photos without mattes for one step, on `like`'s device, dtype and memory layout (None: there
        are none): `train_step` joins them to the batch, and a join of two layouts falls back to NCHW."""
        if self.unlabelled is None:
            return None
        return self.unlabelled.draw(n).to(like).contiguous(memory_format=layout_of(like))

    def autocast(self):
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=amp_dtype(self.device))


def train_step(
    photo: torch.Tensor,
    target: torch.Tensor,
    gan: GAN,
    config: TrainConfig,
    unlabelled: torch.Tensor | None = None,
    measure_share: bool = False,
) -> dict[str, float]:
    """One GAN update on a batch: photo (B, 3, H, W), target RGBA (B, 4, H, W), and optionally
    photos without mattes (U, 3, H, W).

    D judges cut-outs as a user sees them: pasted on a new background, the same one for the true
    cut-out and G's, so that nothing but the cut-out itself tells them apart. D learns first (G's
    output detached: this step must not change G), then G, through a frozen D, learns to fool it
    while matching the true matte and colours. G's cut-outs of the unlabelled photos count among
    the fakes on both sides: no matte is needed to be judged. With `grad_accum` k, the batch goes
    through in k parts whose gradients add up to the whole batch's: the same update in less memory.
    `measure_share`: also record `adv_share`, how strongly D's terms pull on G against the
    reconstruction terms (`adversarial_share`)."""
    n_u = 0 if unlabelled is None else len(unlabelled)
    background = gan.backgrounds.draw(len(photo) + n_u).to(photo.device).contiguous(memory_format=layout_of(photo))
    k = min(config.grad_accum, len(photo))
    photos = photo if unlabelled is None else torch.cat([photo, unlabelled])  # all that G cuts out
    parts = list(zip(target.tensor_split(k), _split(photos, len(photo), k), _split(background, len(photo), k)))
    weights = [len(y) / len(photo) for y, _, _ in parts]  # each part's share of the batch's mean
    r1_due = config.r1_weight > 0 and gan.steps % config.r1_every == 0

    gan.opt_d.zero_grad(set_to_none=True)  # 1. D, on the true cut-outs and G's, detached
    logits, stats = [], {}
    if r1_due:  # before the parts' synced backward, so that DDP averages this gradient with theirs
        for (y, x, bg), w in zip(parts, weights):
            n = len(y)
            r1 = r1_penalty(gan.d, x[:n], over(y, bg[:n]))  # float32: a gradient of a gradient
            gan.scaler.scale(config.r1_weight / 2 * config.r1_every * r1 * w).backward()  # lazy: scaled up to match
            _add(stats, w, r1=r1)
    for i, ((y, x, bg), w) in enumerate(zip(parts, weights)):  # x: n labelled photos, then any unlabelled
        n = len(y)
        with accumulating(gan.d_logits, last=i == k - 1), gan.autocast():
            with contextlib.nullcontext() if k == 1 else torch.no_grad():  # k parts: G runs again below
                logits.append(gan.g_logits(x))
            fake = torch.sigmoid(logits[-1]).detach()
            scores = gan.d_logits(torch.cat([x[:n], x]), torch.cat([over(y, bg[:n]), over(fake, bg)]))
            real_score, fake_score = _split_scores(scores, n)  # the true cut-outs, then all of G's
            loss_d = discriminator_loss(real_score, fake_score, config.gan_loss)
        gan.scaler.scale(loss_d * w).backward()
        _add(stats, w, loss_d=loss_d, **_d_readings(real_score, fake_score, n))
    gan.scaler.step(gan.opt_d)
    gan.steps += 1

    gan.opt_g.zero_grad(set_to_none=True)  # 2. G, through D frozen: gradients flow into G only
    with frozen(gan.d):
        for i, ((y, x, bg), w) in enumerate(zip(parts, weights)):
            with accumulating(gan.g_logits, last=i == k - 1), gan.autocast():
                g_logits = logits[i] if k == 1 else gan.g_logits(x)
                pasted = over(torch.sigmoid(g_logits), bg)  # G's cut-outs, not detached: D's verdict reaches G
                loss_g, from_d, terms = generator_terms(gan.d, x, pasted, g_logits, y, bg, config)
            if measure_share and i == 0:
                stats["adv_share"] = adversarial_share(loss_g, from_d, gan.g.head.weight)
            gan.scaler.scale(loss_g * w).backward()
            _add(stats, w, loss_g=loss_g, **terms)
    _step_g(gan)
    return stats


def reconstruction_step(photo: torch.Tensor, target: torch.Tensor, gan: GAN, config: TrainConfig) -> dict[str, float]:
    """One update of G alone, by the reconstruction terms (`rec_weight` x `reconstruction_losses`):
    the epochs before the adversarial game starts (`adv_start`). D is neither run nor changed, so
    a step costs G's forward and backward only. The same parts as `train_step` with `grad_accum`."""
    k = min(config.grad_accum, len(photo))
    gan.opt_g.zero_grad(set_to_none=True)
    stats = {}
    for i, (y, x) in enumerate(zip(target.tensor_split(k), photo.tensor_split(k))):
        w = len(y) / len(photo)
        with accumulating(gan.g_logits, last=i == k - 1), gan.autocast():
            terms = reconstruction_losses(gan.g_logits(x), y)
            loss_g = config.rec_weight * sum(terms.values())
        gan.scaler.scale(loss_g * w).backward()
        _add(stats, w, loss_g=loss_g, **terms)
    _step_g(gan)
    return stats


def _step_g(gan: GAN) -> None:
    """G's optimizer steps (through the AMP scaler, which then updates its scale), and G's moving
    average, when there is one, follows."""
    gan.scaler.step(gan.opt_g)
    gan.scaler.update()
    if gan.ema is not None:
        gan.ema.update_parameters(gan.g)


@contextlib.contextmanager
def frozen(network: torch.nn.Module):
    """`network`'s weights take no gradient inside the block (`requires_grad_(False)`), and take
    them again after it, also when the block fails (a batch out of memory: the retry needs D)."""
    network.requires_grad_(False)
    try:
        yield network
    finally:
        network.requires_grad_(True)


def generator_terms(
    d: DModel,
    x: torch.Tensor,
    pasted: torch.Tensor,
    g_logits: torch.Tensor,
    y: torch.Tensor,
    bg: torch.Tensor,
    config: TrainConfig,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss on its cut-outs `pasted` of the photos `x` (first the n labelled ones, whose truth
    `y` is known, then any unlabelled): `generator_loss` of D's verdict on all of them and of the
    reconstruction of the labelled ones, plus, with `fm_weight`, pix2pixHD's feature matching (D's
    features of G's cut-outs of the labelled photos against the truth's, on the same backgrounds
    `bg`). Returns (the loss, its part that comes from D, the plain terms for the history)."""
    n = len(y)
    if config.fm_weight > 0:
        features = d.features(torch.cat([x[:n], x]), torch.cat([over(y, bg[:n]), pasted]))
        real_features = [[f[:n] for f in scale] for scale in features]
        fake_features = [[f[n : 2 * n] for f in scale] for scale in features]
        judged = [scale[-1][n:] for scale in features]
    else:
        judged = d(x, pasted)
    loss, terms = generator_loss(judged, g_logits[:n], y, config.rec_weight, config.adv_weight, config.gan_loss)
    from_d = config.adv_weight * terms["g_adv"]
    if config.fm_weight > 0:
        fm = feature_matching_loss(fake_features, real_features)
        loss, from_d = loss + config.fm_weight * fm, from_d + config.fm_weight * fm
        terms |= {"g_fm": fm}
    return loss, from_d, terms


def adversarial_share(loss: torch.Tensor, from_d: torch.Tensor, head: torch.Tensor) -> float:
    """How much D's terms (`from_d`: adversarial and feature matching) move G against the rest of
    its `loss` (the reconstruction terms): the ratio of the norms of the gradients each sends to
    G's last layer (`head`, its weight). 0.01: the GAN is noise beside L1; 1: as strong as it. Two
    backward passes as far as that layer only: cheap enough to measure every few steps."""
    if not from_d.requires_grad:
        return 0.0
    (pull_d,) = torch.autograd.grad(from_d.float(), head, retain_graph=True)
    (pull_rec,) = torch.autograd.grad((loss - from_d).float(), head, retain_graph=True)
    return (pull_d.norm() / pull_rec.norm().clamp_min(1e-12)).item()


def _split(x: torch.Tensor, n: int, k: int) -> list[torch.Tensor]:
    """`x`'s first n rows (the labelled batch) in k parts, each followed by its part of the rest
    (the unlabelled batch): part i is labelled part i, then unlabelled part i."""
    pairs = zip(x[:n].tensor_split(k), x[n:].tensor_split(k))
    return [torch.cat(pair) if len(pair[1]) else pair[0] for pair in pairs]  # cat would drop a channels-last layout


def _split_scores(scores, n: int) -> tuple:
    """D's scores of a batch of n true cut-outs then the fakes: (real, fake), each map or list of maps."""
    if isinstance(scores, list):
        return [s[:n] for s in scores], [s[n:] for s in scores]
    return scores[:n], scores[n:]


def _d_readings(real_score, fake_score, n: int) -> dict[str, torch.Tensor]:
    """What D says, for the history: its BCE whatever loss it is trained with (log 2 = 0.69: it
    cannot tell), and its mean probabilities of real and of fake (G's cut-outs of the labelled
    photos; of the unlabelled ones apart, when there are any)."""
    real, fake = scales(real_score), scales(fake_score)
    readings = {
        "d_bce": discriminator_loss(real_score, fake_score, "bce"),
        "d_real": sum(torch.sigmoid(s.float()).mean() for s in real) / len(real),
        "d_fake": sum(torch.sigmoid(s[:n].float()).mean() for s in fake) / len(fake),
    }
    if len(fake[0]) > n:
        readings["d_unlabelled"] = sum(torch.sigmoid(s[n:].float()).mean() for s in fake) / len(fake)
    return readings


def _add(stats: dict[str, float], weight: float, **values) -> None:
    """Add each value (a tensor or a float) times `weight` to its running mean in `stats`."""
    for key, value in values.items():
        stats[key] = stats.get(key, 0.0) + weight * (value.detach().item() if torch.is_tensor(value) else value)
