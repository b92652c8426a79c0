"""The network's small outputs brought back to the photo's own resolution.

The network sees the photo at its training size (64 px for the cpu profile). Upsampled bilinearly,
its matte is a ramp one network pixel wide around every edge (47 photo pixels at 3000 px wide), and
the photo's colour in the soft band is a blend of object and old background. `refine_matte`
sharpens the matte and moves its edges onto the photo's own (a guided filter, He et al. 2010, with
the photo as the guide); `decontaminate` replaces the blended colours by the network's estimate of
the object's own. The constants were chosen on the sample's validation split (see `refine_matte`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STRETCH = 4.0  # the matte's contrast around 0.5 before the filter
RADIUS = 2.0  # the guided filter's window radius, in network pixels
EPS = 1e-4  # its regularisation: below the guide's local variance at an edge, so edges are kept
WORK_SCALE = 4  # the filter runs at most at 4x the network's size; its linear model is upsampled


def _box(x: torch.Tensor, r: tuple[int, int]) -> torch.Tensor:
    """Mean over a (2 r_y + 1) x (2 r_x + 1) window, in two 1-D passes; near the border, over the
    pixels there are."""
    x = F.avg_pool2d(x, (1, 2 * r[1] + 1), stride=1, padding=(0, r[1]), count_include_pad=False)
    return F.avg_pool2d(x, (2 * r[0] + 1, 1), stride=1, padding=(r[0], 0), count_include_pad=False)


def _guided_coefficients(guide: torch.Tensor, src: torch.Tensor, r: tuple[int, int], eps: float) -> torch.Tensor:
    """The guided filter's local linear model src ~ A . guide + b, window-averaged: (1, 4, h, w),
    A in the first three channels, b in the last; guide (1, 3, h, w), src (1, 1, h, w)."""
    mean_i, mean_p = _box(guide, r), _box(src, r)
    cov = _box(guide * src, r) - mean_i * mean_p  # (1, 3, h, w)
    pairs = [(i, j) for i in range(3) for j in range(3)]
    products = torch.cat([guide[:, i : i + 1] * guide[:, j : j + 1] for i, j in pairs], 1)
    var = _box(products, r) - torch.cat([mean_i[:, i : i + 1] * mean_i[:, j : j + 1] for i, j in pairs], 1)
    h, w = guide.shape[-2:]
    var = var.permute(0, 2, 3, 1).reshape(h * w, 3, 3) + eps * torch.eye(3, device=guide.device)
    a = torch.linalg.solve(var, cov.permute(0, 2, 3, 1).reshape(h * w, 3, 1))  # (h*w, 3, 1)
    a = a.reshape(1, h, w, 3).permute(0, 3, 1, 2)
    b = mean_p - (a * mean_i).sum(1, keepdim=True)
    return _box(torch.cat([a, b], 1), r)


def upsample_matte(photo: torch.Tensor, alpha_small: torch.Tensor, refine: bool = True) -> torch.Tensor:
    """The matte (1, 1, H, W) at the size of `photo` (1, 3, H, W), from the network's (1, 1, s, s).

    Without `refine`: bilinear upsampling. With it (chosen on the sample's validation split,
    64 px network, photos at 256 and 512 px; the test split's SAD and gradient error are in the
    branch's report): the bilinear matte's contrast is stretched around 0.5 (the network's alpha is
    a probability, trained with BCE, softer than the true matte), then a guided filter fits it, in
    each window of 2 network pixels around a pixel, as a linear function of the photo's colours, so its edges
    land on the photo's. The filter runs at 4x the network's size at most, and its linear model is
    applied to the full-resolution photo (the fast guided filter, He and Sun 2015)."""
    height, width = photo.shape[-2:]
    if not refine:
        return F.interpolate(alpha_small, size=(height, width), mode="bilinear", align_corners=False)
    factor = min(1.0, WORK_SCALE * max(alpha_small.shape[-2:]) / min(height, width))
    h, w = max(1, round(height * factor)), max(1, round(width * factor))
    guide = photo if factor == 1 else F.interpolate(photo, size=(h, w), mode="area")
    src = F.interpolate(alpha_small, size=(h, w), mode="bilinear", align_corners=False)
    src = ((src - 0.5) * STRETCH + 0.5).clamp(0, 1)
    r = (max(1, round(RADIUS * h / alpha_small.shape[-2])), max(1, round(RADIUS * w / alpha_small.shape[-1])))
    coefficients = _guided_coefficients(guide, src, r, EPS)  # (1, 4, h, w)
    if factor < 1:
        coefficients = F.interpolate(coefficients, size=(height, width), mode="bilinear", align_corners=False)
    return ((coefficients[:, :3] * photo).sum(1, keepdim=True) + coefficients[:, 3:]).clamp(0, 1)


def _edge_band(alpha_small: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Where the network's matte goes from background to object within two network pixels:
    (1, 1, H, W) bool at `size`. A blend of object and background is only expected there (on the
    validation split, 97% of the soft band the export and the truth share lies inside)."""
    high = F.max_pool2d(alpha_small, 5, stride=1, padding=2)
    low = -F.max_pool2d(-alpha_small, 5, stride=1, padding=2)
    band = ((low < 0.2) & (high > 0.8)).float()
    return F.interpolate(band, size=size, mode="bilinear", align_corners=False) > 0


def decontaminate(
    photo: torch.Tensor, offset_small: torch.Tensor, alpha: torch.Tensor, alpha_small: torch.Tensor
) -> torch.Tensor:
    """The export's colours (1, 3, H, W): the photo's, except where the matte is soft (0 < alpha < 1
    once written in 8 bits) along an object's edge. There the photo's pixel is a blend of object and
    old background, which would show as a halo over a new one; the network's own colour is used
    instead: its correction to the photo's colours in logit space (`offset_small`, (1, 3, s, s)),
    upsampled and added to the full-resolution photo's. A zero correction gives the photo's colours
    exactly; so does a matte that is soft with no edge in it (an unsure network: nothing to fix)."""
    soft = (alpha > 0.5 / 255) & (alpha < 254.5 / 255) & _edge_band(alpha_small, photo.shape[-2:])
    offset = F.interpolate(offset_small, size=photo.shape[-2:], mode="bilinear", align_corners=False)
    clamped = photo.clamp(0.01, 0.99)  # as GModel.logits clamps it
    colour = photo + torch.sigmoid(torch.logit(clamped) + offset) - clamped
    return torch.where(soft, colour.clamp(0, 1), photo)
