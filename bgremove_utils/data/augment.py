"""Joint augmentation of a batch: the same random flip and crop (or zoom out) for each photo and its
cut-out, a different one for each picture of the batch, in one resampling; the cut-out's colours
resampled premultiplied by its alpha, so that soft edges keep their colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms import RandomResizedCrop

CROP_SCALE, CROP_RATIO = (0.5, 1.0), (0.75, 1.33)  # RandomResizedCrop's area fraction and aspect ratio


def augment_batch(images: torch.Tensor, zoom_out: float = 1.0) -> torch.Tensor:
    """A random horizontal flip and crop (RandomResizedCrop's) of each picture of a batch (B, C, S, S),
    resized back to S: torchvision's v2 transforms draw one set of parameters per call, so here torchvision's
    RandomResizedCrop draws each crop and one `grid_sample` resamples them all (bilinear; a crop is
    never larger than the picture, so it is only ever enlarged and nothing aliases). Channels are
    moved together: stack photo and cut-out along C to keep them aligned.

    `zoom_out` < 1: half the pictures are shrunk instead, their side to a random share between
    `zoom_out` and 1, placed anywhere, the rest of the frame filled with the picture's edge pixels
    drawn outwards (photo and cut-out alike, so an object cut by the edge goes on, labelled): objects
    as small as in a wide shot, in surroundings that continue the photo's own colours, as an
    out-of-focus background does. torchvision's RandomZoomOut fills a constant frame, an edge no
    photograph has; mirroring the picture instead (`padding_mode="reflection"`) scored lower on real
    photographs (docs/real-photos.md). Shrunk without a low-pass filter, the finest detail aliases a
    little, the photo and its matte alike."""
    b, _, height, width = images.shape
    boxes = torch.tensor([RandomResizedCrop.get_params(images[0], CROP_SCALE, CROP_RATIO) for _ in range(b)])
    top, left, h, w = boxes.to(images.dtype).unbind(1)  # get_params gives (top, left, height, width)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0).to(images.dtype)
    theta = torch.zeros(b, 2, 3, dtype=images.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w / width * flip, (2 * left + w) / width - 1  # x: crop, then flip
    theta[:, 1, 1], theta[:, 1, 2] = h / height, (2 * top + h) / height - 1
    if zoom_out < 1:
        out = torch.rand(b) < 0.5
        side = (zoom_out + (1 - zoom_out) * torch.rand(b)).to(images.dtype)  # the picture's share of the frame
        cx, cy = ((1 - side) * (2 * torch.rand(b, dtype=images.dtype) - 1) for _ in range(2))  # where it lies
        zoomed = torch.stack([flip / side, -flip * cx / side, 1 / side, -cy / side], 1)
        theta[out, 0, 0], theta[out, 0, 2], theta[out, 1, 1], theta[out, 1, 2] = zoomed[out].unbind(1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_pairs(
    photo: torch.Tensor, cutout: torch.Tensor, zoom_out: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`augment_batch` of photos (B, 3, S, S) and their RGBA cut-outs (B, 4, S, S) together. The
    cut-out's colours are resampled premultiplied by alpha, then divided by it again, as Pillow
    resizes RGBA pictures: resampled as they are, a soft pixel's colour would be blended with the
    colour stored under alpha 0 (black in the sample: dark halos on every edge). Where alpha is 0
    the colour is 0."""
    alpha = cutout[:, 3:]
    both = augment_batch(torch.cat([photo, cutout[:, :3] * alpha, alpha], 1), zoom_out)  # (B, 7, S, S)
    photo, premultiplied, alpha = both[:, :3], both[:, 3:6], both[:, 6:]
    rgb = torch.where(alpha > 0, premultiplied / alpha.clamp_min(1e-12), 0.0).clamp(0, 1)
    return photo, torch.cat([rgb, alpha], 1)
