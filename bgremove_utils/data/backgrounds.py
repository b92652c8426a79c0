"""Fresh backgrounds for cut-outs, and the compositing that makes a photo of a cut-out on one.

As Deep Image Matting trains (Xu et al., 2017), a cut-out pasted on many backgrounds makes many
photos: here random crops of real photographs (flipped, recoloured, sometimes out of focus) and
procedural textures (gradients, stripes, checks, smooth noise), drawn a batch at a time in torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F

from .images import over

PHOTO_SHARE = 0.7  # of the backgrounds, the share cut from real photos; the rest are textures
BLUR_LEVELS = (0.0, 0.0, 0.0, 0.012, 0.025, 0.04)  # Gaussian sigmas, of the picture's side, one drawn for each


def _rand(n: int, low: float, high: float, generator: torch.Generator | None, device=None) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, device=device)


def _either(chosen: torch.Tensor, first, second, shape: tuple) -> torch.Tensor:
    """Pictures (n, ...) of two kinds: `first(k)` where `chosen` (n,) is True, `second(k)` elsewhere.
    On the CPU each kind is made for its own pictures only (the random draws every sample was made
    with); on a GPU both kinds for every picture, one kept: no count read back, so the GPU never
    waits for the CPU."""
    n = len(chosen)
    if first is None:  # no pictures of the first kind to make (no photos): all of the second
        return second(n)
    if chosen.device.type != "cpu":
        return torch.where(chosen.view(n, *[1] * (len(shape) - 1)), first(n), second(n))
    out = torch.empty(shape)
    if chosen.any():
        out[chosen] = first(int(chosen.sum()))
    if not chosen.all():
        out[~chosen] = second(int((~chosen).sum()))
    return out


class Backgrounds:
    """Backgrounds (n, 3, size, size) in [0, 1] on demand: `draw(n)`. The photos are cut once into a
    pool of square crops twice the output size (a crop of a crop is never upsampled much). `to(device)`
    moves the pool: the backgrounds are then drawn there (training draws them on its GPU)."""

    def __init__(self, photos: Sequence[np.ndarray], size: int, photo_share: float = PHOTO_SHARE):
        self.size, self.photo_share = size, photo_share if photos else 0.0
        self.device = torch.device("cpu")
        side = min(2 * size, 384)
        crops = []
        for photo in photos:  # (H, W, 3) uint8: the whole photo's middle square and its four quarters
            x = torch.from_numpy(np.array(photo, dtype=np.float32)).permute(2, 0, 1)[None]
            h, w = x.shape[-2:]
            s = min(h, w)
            quarters = [(top, left, s // 2) for top in (0, h - s // 2) for left in (0, w - s // 2)]
            for top, left, k in [((h - s) // 2, (w - s) // 2, s), *quarters]:
                crop = x[..., top : top + k, left : left + k]
                crops.append(F.interpolate(crop, size=(side, side), mode="area" if k > side else "bilinear"))
        self.pool = torch.cat(crops).div(255).clamp(0, 1) if crops else None  # (N, 3, 2S, 2S)

    def to(self, device: torch.device | str) -> Backgrounds:
        """The same backgrounds, drawn on `device` from now on (the pool moved there); itself."""
        self.device = torch.device(device)
        self.pool = self.pool.to(self.device) if self.pool is not None else None
        return self

    def draw(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`n` backgrounds on the device of the pool: each a real photo's crop with probability
        `photo_share`, else a texture; half of them out of focus. `generator`: a CPU one, on the CPU."""
        device, size = self.device, self.size
        photo = torch.rand(n, generator=generator, device=device) < self.photo_share
        crops = (lambda k: self._photo_crops(k, generator)) if self.pool is not None else None
        out = _either(photo, crops, lambda k: _textures(k, size, generator, device), (n, 3, size, size))
        return blur(out, torch.randint(len(BLUR_LEVELS), (n,), generator=generator, device=device)).clamp(0, 1)

    def _photo_crops(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        """Random crops (a fifth to all of a pool square), flipped and recoloured."""
        device = self.device
        pick = torch.randint(len(self.pool), (n,), generator=generator, device=device)
        side = _rand(n, 0.45, 1.0, generator, device)  # of the pool square's side
        cx, cy = ((1 - side) * (2 * torch.rand(n, generator=generator, device=device) - 1) for _ in range(2))
        flip = torch.where(torch.rand(n, generator=generator, device=device) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3, device=device)
        theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = side * flip, cx, side, cy
        grid = F.affine_grid(theta, [n, 3, self.size, self.size], align_corners=False)
        x = F.grid_sample(self.pool[pick], grid, mode="bilinear", align_corners=False)
        return recolour(x, generator)


def recolour(x: torch.Tensor, generator: torch.Generator | None = None, strength: float = 1.0) -> torch.Tensor:
    """Random brightness, contrast, saturation and tint for each picture (n, 3, H, W) in [0, 1]:
    a grey photo becomes a tinted one, a colour photo another colour cast."""
    n, device = len(x), x.device
    if n == 0:
        return x
    grey = x.mean(1, keepdim=True)
    saturation = _rand(n, 1 - 0.7 * strength, 1 + 0.4 * strength, generator, device).view(n, 1, 1, 1)
    x = grey + (x - grey) * saturation
    tint = _rand(3 * n, 1 - 0.35 * strength, 1 + 0.35 * strength, generator, device).view(n, 3, 1, 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = _rand(n, 1 - 0.4 * strength, 1 + 0.3 * strength, generator, device).view(n, 1, 1, 1)
    brightness = _rand(n, 1 - 0.4 * strength, 1 + 0.3 * strength, generator, device).view(n, 1, 1, 1)
    return (((x - mean) * contrast + mean) * tint * brightness).clamp(0, 1)


def blur(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """Each picture of (n, C, H, W) blurred by the Gaussian of its `level` (n,), an index into
    BLUR_LEVELS (0: sharp): depth of field. One pair of 1D convolutions per level (on a GPU, over
    every picture, one kept: no count read back)."""
    out = x.clone()
    for i, sigma in enumerate(BLUR_LEVELS):
        chosen = level == i
        if sigma and x.device.type != "cpu":
            out = torch.where(chosen.view(-1, 1, 1, 1), _gaussian(x, sigma * x.shape[-1]), out)
        elif sigma and chosen.any():
            out[chosen] = _gaussian(x[chosen], sigma * x.shape[-1])
    return out


def _gaussian(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = math.ceil(3 * sigma)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    taps = taps / taps.sum()
    flat = F.pad(x.reshape(-1, 1, *x.shape[-2:]), (radius, radius, radius, radius), mode="reflect")
    flat = F.conv2d(F.conv2d(flat, taps.view(1, 1, -1, 1)), taps.view(1, 1, 1, -1))
    return flat.view_as(x)


@cache
def _grid(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Each pixel's row and column, (S, S) each, from 0 to 1."""
    line = torch.linspace(0, 1, size, device=device)
    return tuple(torch.meshgrid(line, line, indexing="ij"))


def _textures(n: int, size: int, generator: torch.Generator | None, device=None) -> torch.Tensor:
    """Procedural backgrounds (n, 3, S, S): between two random colours, a gradient, stripes, checks
    or smooth noise, plus a little grain."""
    device = torch.device(device or "cpu")
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=device)
    yy, xx = _grid(size, device)
    angle = (2 * math.pi * rand(n)).view(n, 1, 1)
    along = torch.cos(angle) * xx + torch.sin(angle) * yy  # (n, S, S)
    frequency = _rand(n, 3, 12, generator, device).view(n, 1, 1)
    cells = torch.randint(3, 10, (n, 1, 1), generator=generator, device=device)
    noise = F.interpolate(rand(n, 1, 8, 8), size=(size, size), mode="bicubic")[:, 0]
    patterns = torch.stack(
        [
            (along - along.amin((1, 2), keepdim=True)) / (along.amax((1, 2), keepdim=True) - along.amin((1, 2), True)),
            (torch.sin(2 * math.pi * frequency * along) > 0).float(),
            ((torch.floor(xx * cells) + torch.floor(yy * cells)) % 2).float(),
            noise.clamp(0, 1),
        ],
        1,
    )  # (n, 4, S, S)
    kind = torch.randint(4, (n,), generator=generator, device=device)
    t = patterns[torch.arange(n, device=device), kind][:, None]  # (n, 1, S, S)
    a, b = rand(n, 3, 1, 1), rand(n, 3, 1, 1)
    grain = torch.randn(n, 1, size, size, generator=generator, device=device)
    grain = grain * _rand(n, 0, 0.04, generator, device).view(n, 1, 1, 1)
    return (a + (b - a) * t + grain).clamp(0, 1)


def paste(cutout: torch.Tensor, background: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The photo (n, 3, H, W) of RGBA cut-outs (n, 4, H, W) on backgrounds (n, 3, H, W): `over`,
    the background darkened by a soft drop shadow of the object for half of them, and a little
    sensor noise."""
    n, _, h, w = cutout.shape
    alpha = cutout[:, 3:]
    shift = torch.randint(-h // 16, h // 16 + 1, (2,), generator=generator).tolist()
    k = 2 * (h // 64) + 3  # a box blur of about 5 % of the picture's side
    shadow = F.avg_pool2d(torch.roll(alpha, shift, dims=(2, 3)), k, stride=1, padding=k // 2, count_include_pad=False)
    darkness = _rand(n, 0.0, 0.5, generator) * (torch.rand(n, generator=generator) < 0.5)
    background = background * (1 - darkness.view(n, 1, 1, 1) * shadow)
    noise = torch.randn(n, 3, h, w, generator=generator) * 0.01
    return (over(cutout, background) + noise).clamp(0, 1)
