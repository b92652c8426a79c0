"""The two networks of the GAN: a U-Net generator `GModel` that predicts RGB and an alpha matte,
and a conditional residual discriminator `DModel` that scores patches of a candidate cut-out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..settings import DConfig, GConfig


def norm_layer(channels: int) -> nn.Module:
    """Instance norm with a learned scale and shift: each picture normalised on its own, so a
    batch of very different photos does not blur the statistics (as pix2pix at batch size 1)."""
    return nn.InstanceNorm2d(channels, affine=True)


class Down(nn.Module):
    """Encoder block: a strided 4x4 convolution halves the size, (B, C, H, W) -> (B, C', H/2, W/2)."""

    def __init__(self, c_in: int, c_out: int, norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)
        self.norm = norm_layer(c_out) if norm else nn.Identity()
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Up(nn.Module):
    """Decoder block: a 4x4 transpose convolution doubles the size, the skip is concatenated, and a
    3x3 convolution merges the two (and smooths the transpose convolution's checkerboard):
    (B, C, H, W) + skip (B, S, 2H, 2W) -> (B, C', 2H, 2W)."""

    def __init__(self, c_in: int, c_skip: int, c_out: int):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
        self.norm = norm_layer(c_out)
        self.merge = nn.Conv2d(c_out + c_skip, c_out, 3, padding=1, bias=False)
        self.merge_norm = norm_layer(c_out)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.act(self.norm(self.deconv(x))), skip], dim=1)
        return self.act(self.merge_norm(self.merge(x)))


class GModel(nn.Module):
    """U-Net generator: photo (B, 3, H, W) in [0, 1] -> RGBA (B, 4, H, W) in [0, 1].

    Each photo's colour channels are first standardised (zero mean, unit spread): photos differ
    in palette and exposure, and what separates object from background is contrast, not colour.
    `depth` strided convolutions halve the size down to H / 2**depth; as many transpose
    convolutions bring it back, each joined by a skip connection to the encoder output of the
    same size and merged with it by a 3x3 convolution; one more 3x3 convolution at full size
    refines the outlines. The last layer gives four
    logits, each through a sigmoid: alpha, and RGB as a correction added to the photo's own colours
    in logit space (the standardised input has lost them; inside an object they are already right).
    """

    def __init__(self, config: GConfig | None = None, **fields):
        super().__init__()
        self.config = c = replace(config or GConfig(), **fields)  # e.g. GModel(depth=3, base_channels=16)
        widths = [min(c.base_channels * 2**i, c.max_channels) for i in range(c.depth + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1), nn.LeakyReLU(0.2, inplace=True))
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1]) for i in range(c.depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(c.depth)))
        self.refine = nn.Sequential(  # one more 3x3 conv at full size: outlines are decided there
            nn.Conv2d(widths[0], widths[0], 3, padding=1, bias=False), norm_layer(widths[0]), nn.ReLU(inplace=True)
        )
        self.head = nn.Conv2d(widths[0], 4, 3, padding=1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The four output channels before the sigmoid, (B, 4, H, W); the losses use these."""
        check_side(x.shape, self.config.depth)
        mean, spread = x.mean((2, 3), keepdim=True), x.std((2, 3), keepdim=True) + 0.05
        skips = [self.stem((x - mean) / spread)]  # (B, C0, H, W)
        for down in self.downs:
            skips.append(down(skips[-1]))  # (B, Ci, H / 2**i, W / 2**i)
        h = skips.pop()  # the bottleneck, (B, Cd, H / 2**depth, W / 2**depth)
        for up in self.ups:
            h = up(h, skips.pop())
        out = self.head(self.refine(h))
        rgb = out[:, :3] + torch.logit(x.clamp(0.01, 0.99))  # colour: a correction to the photo's own
        return torch.cat([rgb, out[:, 3:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))

    @torch.no_grad()
    def predict(self, x: torch.Tensor, mirror: bool = True) -> torch.Tensor:
        """RGBA (B, 4, H, W) in eval mode, without gradients; the mode it was in is restored.
        `mirror`: the mean of the prediction of each picture and of its mirror image, flipped back
        (test-time augmentation): G learnt from mirrored pictures too, and its two answers' errors
        partly cancel. On real photographs it raised the mean IoU of each group of models tried, on
        both halves (docs/real-photos.md), for a second pass of G at its own small size."""
        was_training = self.training
        self.eval()
        try:
            return mirror_mean(self, x) if mirror else self(x).float()
        finally:
            self.train(was_training)


def check_side(shape: torch.Size | tuple[int, ...], depth: int) -> None:
    """A ValueError unless the picture's height and width are multiples of 2**depth: the U-Net
    halves them `depth` times and its skips must meet the decoder's outputs at the same size."""
    step = 2**depth
    if shape[-1] % step or shape[-2] % step:
        raise ValueError(f"GModel of depth {depth} needs H and W divisible by {step}, got {tuple(shape[-2:])}")


def mirror_mean(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The mean of `forward` on each picture and on its mirror image, flipped back, (B, C, H, W)
    float: GModel's test-time augmentation, whichever runtime runs the network."""
    return (forward(x).float() + forward(x.flip(3)).float().flip(3)) / 2


class ResBlock(nn.Module):
    """Two 3x3 convolutions added to their input: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            norm_layer(channels),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            norm_layer(channels),
        )
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class DModel(nn.Module):
    """Conditional PatchGAN discriminator built of residual blocks.

    It sees the photo beside a candidate cut-out as a user sees it, pasted on a background,
    (B, 3, H, W) + (B, 3, H, W), and returns a map of patch logits (B, 1, H / 2**d_down,
    W / 2**d_down): no sigmoid (the loss is BCEWithLogits) and no fixed-size head, so any input
    size divisible by 2**d_down works. It never sees alpha itself: a true matte's exact zeros
    would tell it from the generator's at once, whatever the cut-out looks like.

    `d_spectral_norm` bounds each convolution's spectral norm (Miyato et al. 2018), kept beside
    instance norm as SPADE's D does.
    """

    def __init__(self, config: DConfig | None = None, **fields):
        super().__init__()
        self.config = c = replace(config or DConfig(), **fields)  # e.g. DModel(d_channels=16, d_down=2)
        self.net = patch_discriminator(c.d_channels, c.d_down)
        if c.d_spectral_norm:
            for conv in [m for m in self.modules() if isinstance(m, nn.Conv2d)]:
                spectral_norm(conv)

    def forward(self, photo: torch.Tensor, pasted: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([photo, pasted], dim=1))  # (B, 1, H / 2**d_down, W / 2**d_down)


def patch_discriminator(channels: int, down: int) -> nn.Sequential:
    """One scale of DModel: photo and pasted cut-out (B, 6, H, W) -> logits (B, 1, H / 2**down, W / 2**down)."""
    c = channels
    layers: list[nn.Module] = [Down(3 + 3, c, norm=False)]
    for _ in range(down - 1):
        c_next = min(c * 2, 256)
        layers += [ResBlock(c), Down(c, c_next)]
        c = c_next
    layers += [ResBlock(c), nn.Conv2d(c, 1, 3, padding=1)]
    return nn.Sequential(*layers)
