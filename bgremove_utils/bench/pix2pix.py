"""pix2pix's recipe (Isola et al., CVPR 2017), the peer a learner would pick instead of this course,
written from the paper's published settings (its section 3 and appendix 6.1), none of its code:
a U-Net G of 4x4 stride-2 convolutions (BatchNorm but on the first and innermost layers, LeakyReLU
0.2 down, ReLU up, dropout 0.5 in the first three decoder blocks, tanh out); a 70x70 PatchGAN D
(C64-C128-C256-C512) judging (photo, output) pairs; Adam 2e-4 with beta1 0.5; the vanilla GAN loss
plus lambda 100 times L1, D's objective halved; weights from N(0, 0.02); float32. The RGBA cut-out
is painted as an image, in [-1, 1], as pix2pix paints any target.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from ..data.dataset import Loaders
from ..evaluation.metrics import evaluate

LAMBDA_L1 = 100.0
LR, BETAS = 2e-4, (0.5, 0.999)


def _down(cin: int, cout: int, norm: bool) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm), *([nn.BatchNorm2d(cout)] if norm else []))


class Pix2PixG(nn.Module):
    """pix2pix's U-Net: as many 4x4 stride-2 blocks as halve `size` to 1 pixel (6 at 64 px), 64
    channels doubling to 512, the encoder's blocks joined to the decoder's by skips."""

    def __init__(self, size: int = 64, ngf: int = 64, out_channels: int = 4, batch_size: int = 1):
        super().__init__()
        n = size.bit_length() - 1  # 64 px: 6 blocks, to 1x1
        widths = [min(ngf * 2**i, ngf * 8) for i in range(n)]
        self.down = nn.ModuleList(
            _down(3 if i == 0 else widths[i - 1], widths[i], norm=0 < i < n - 1) for i in range(n)
        )
        self.up = nn.ModuleList()
        for i in reversed(range(1, n)):  # innermost first; each block but the innermost takes a skip too
            cin = widths[i] * (1 if i == n - 1 else 2)
            block = [nn.ConvTranspose2d(cin, widths[i - 1], 4, 2, 1, bias=False), nn.BatchNorm2d(widths[i - 1])]
            self.up.append(nn.Sequential(*block, *([nn.Dropout(0.5)] if n - 1 - i < 3 else [])))
        self.out = nn.ConvTranspose2d(widths[0] * 2, out_channels, 4, 2, 1)
        self.batch_size = batch_size  # the paper tests at its training batch, in training mode
        _init_weights(self)

    def forward(self, photo: torch.Tensor) -> torch.Tensor:
        """Photo in [-1, 1] (B, 3, H, W) -> RGBA in [-1, 1] (B, 4, H, W)."""
        skips, x = [], photo
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.leaky_relu(x, 0.2))
            skips.append(x)
        skips.pop()
        for block in self.up:
            x = torch.cat([block(F.relu(x)), skips.pop()], 1)
        return torch.tanh(self.out(F.relu(x)))

    @torch.no_grad()
    def predict(self, photo: torch.Tensor) -> torch.Tensor:
        """RGBA in [0, 1] for photos in [0, 1], as the paper tests: in training mode (dropout on,
        BatchNorm on the test batch's own statistics: instance normalisation at batch 1), in
        batches of the training batch size."""
        self.train()
        return torch.cat([(self(p * 2 - 1) + 1) / 2 for p in photo.split(self.batch_size)])


class Pix2PixD(nn.Module):
    """The 70x70 PatchGAN: C64-C128-C256-C512 (4x4; stride 2, 2, 2, 1; no BatchNorm on the first),
    then a 4x4 convolution to one logit per patch, on the photo and the RGBA stacked (7 channels)."""

    def __init__(self, in_channels: int = 7, ndf: int = 64):
        super().__init__()
        layers, cin = [], in_channels
        for i, (cout, stride) in enumerate([(ndf, 2), (ndf * 2, 2), (ndf * 4, 2), (ndf * 8, 1)]):
            layers += [nn.Conv2d(cin, cout, 4, stride, 1, bias=i == 0)]
            layers += [nn.BatchNorm2d(cout)] if i else []
            layers += [nn.LeakyReLU(0.2)]
            cin = cout
        self.net = nn.Sequential(*layers, nn.Conv2d(cin, 1, 4, 1, 1))
        _init_weights(self)

    def forward(self, photo: torch.Tensor, rgba: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([photo, rgba], 1))


def _init_weights(model: nn.Module) -> None:
    """The paper's initialisation: weights from a Gaussian of mean 0 and deviation 0.02."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def pix2pix_step(photo: torch.Tensor, target: torch.Tensor, g, d, opt_g, opt_d) -> dict[str, float]:
    """One step of the recipe, D then G, on a photo and its RGBA cut-out in [0, 1]."""
    photo, target = photo * 2 - 1, target * 2 - 1
    fake = g(photo)
    real_logits, fake_logits = d(photo, target), d(photo, fake.detach())
    bce = F.binary_cross_entropy_with_logits
    loss_d = (bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))) / 2
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()
    fake_logits = d(photo, fake)
    loss_g = bce(fake_logits, torch.ones_like(fake_logits)) + LAMBDA_L1 * F.l1_loss(fake, target)
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    opt_g.step()
    return {"loss_g": loss_g.item(), "loss_d": loss_d.item()}


def train_pix2pix(
    loaders: Loaders, batch_size: int, seconds: float, seed: int = 0, stop_at_iou: float | None = None
) -> list[dict]:
    """Train the recipe on the CPU on `loaders`' training pairs (the same data and augmentation as
    ours) for `seconds` of training, validating after each epoch and when time is up: a history
    like `train`'s (epoch, seconds, val_seconds, val_iou), stopped early at `stop_at_iou`."""
    torch.manual_seed(seed)
    size = loaders.val.dataset[0][0].shape[-1]  # (not augmented: draws nothing from the random stream)
    g, d = Pix2PixG(size, batch_size=batch_size), Pix2PixD()
    opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=LR, betas=BETAS) for m in (g, d))
    shuffle = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(loaders.train.dataset, batch_size, shuffle=True, drop_last=True, generator=shuffle)
    history, trained = [], 0.0
    while trained < seconds:
        start, losses, n = time.perf_counter(), {}, 0
        g.train()
        d.train()
        for photo, target in train_loader:
            for key, value in pix2pix_step(photo, target, g, d, opt_g, opt_d).items():
                losses[key] = losses.get(key, 0.0) + value
            n += 1
            if trained + time.perf_counter() - start >= seconds:
                break
        tick = time.perf_counter()
        trained += tick - start
        val = evaluate(g, loaders.val, "cpu", baseline=False)["model"]
        row = {"epoch": len(history) + 1, **{k: v / n for k, v in losses.items()}, "val_iou": val["iou"]}
        end = time.perf_counter()
        history.append(row | {"seconds": end - start, "val_seconds": end - tick})
        if stop_at_iou is not None and val["iou"] >= stop_at_iou:
            break
    return history
