"""The GAN's losses: BCE-with-logits for the adversarial game, on D's map of patch logits; L1,
BCE and soft IoU on the matte and L1 on the colour inside the object, the reconstruction terms
weighted heavily as in pix2pix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

EDGE_WEIGHT = 60.0  # extra weight of a pixel on the object's outline in the alpha BCE: it counts 1 + 60 times


def edge_band(true_alpha: torch.Tensor) -> torch.Tensor:
    """1 where a pixel of the (B, 1, H, W) matte lies within one pixel of the object's outline
    (alpha 0.5), on either side; else 0. A 3x3 dilation minus a 3x3 erosion of the mask."""
    mask = (true_alpha >= 0.5).float()
    return F.max_pool2d(mask, 3, 1, 1) + F.max_pool2d(-mask, 3, 1, 1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D wants real cut-outs scored 1 and generated ones 0: BCE with logits on its patch logits,
    halved, so that it reads log 2 = 0.69 at chance. Labels are made `*_like` the logits, so a
    short last batch or another image size needs nothing special."""
    return 0.5 * (
        F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    )


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G's adversarial term, to make D score its cut-outs real: BCE against 1 (the non-saturating
    loss, whose gradient does not vanish when D is sure)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def reconstruction_losses(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-pixel terms of G's prediction against the true cut-out, both (B, 4, H, W), each a mean
    over the pictures of each picture's own value (so that a batch's loss is the mean of its
    parts' losses, as gradient accumulation needs).

    - `alpha_l1`: mean |alpha - true alpha|, the matte itself.
    - `alpha_bce`: BCE with logits on the alpha logits: L1 alone through a sigmoid saturates
      towards "all background" in the first steps and stops learning; BCE keeps its gradient.
      Pixels of the `edge_band` count 1 + `EDGE_WEIGHT` times: the outline is a thin band of a
      few percent of the pixels, which a plain mean barely notices, though a matte is judged by it.
    - `colour_l1`: mean |RGB - true RGB| weighted by the true alpha (outside the object the
      colour is undefined and comes from the photo at export time).
    - `alpha_iou`: 1 - the soft IoU of each matte with its truth, averaged over the batch: the
      metric the course reports, made differentiable. Per pixel terms treat a small object's
      outline as a few pixels among thousands; this one weighs each picture's object as a whole.
    """
    logits = logits.float()
    rgb, alpha = torch.sigmoid(logits[:, :3]), torch.sigmoid(logits[:, 3:])
    true_rgb, true_alpha = target[:, :3].float(), target[:, 3:].float()
    per_picture = lambda x, weight: ((weight * x).sum((1, 2, 3)) / weight.sum((1, 2, 3)).clamp_min(1.0)).mean()
    bce = F.binary_cross_entropy_with_logits(logits[:, 3:], true_alpha, reduction="none")
    both = alpha * true_alpha
    overlap = both.sum((1, 2, 3))
    union = (alpha + true_alpha - both).sum((1, 2, 3)).clamp_min(1.0)
    return {
        "alpha_l1": F.l1_loss(alpha, true_alpha),
        "alpha_bce": per_picture(bce, 1 + EDGE_WEIGHT * edge_band(true_alpha)),
        "colour_l1": per_picture((rgb - true_rgb).abs(), true_alpha.expand_as(rgb)),
        "alpha_iou": 1 - (overlap / union).mean(),
    }


def generator_loss(
    fake_logits: torch.Tensor,
    logits: torch.Tensor,
    target: torch.Tensor,
    rec_weight: float = 100.0,
    adv_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss: fool D (`adversarial_loss` of D's scores of G's cut-outs), plus `rec_weight` x the
    reconstruction terms of G's `logits` against the true `target`. Returns the total and each
    term unweighted, "g_adv" first, then `reconstruction_losses`'s (tensors, for the history).
    The notebooks and `train_step` both use it."""
    terms = {"g_adv": adversarial_loss(fake_logits), **reconstruction_losses(logits, target)}
    reconstruction = sum(value for name, value in terms.items() if name != "g_adv")
    return adv_weight * terms["g_adv"] + rec_weight * reconstruction, terms
