"""The GAN's losses: BCE-with-logits (or the hinge loss) for the adversarial game, with the R1
penalty and pix2pixHD's feature matching beside it; plus L1, BCE and soft IoU on the matte and L1
on the colour inside the object, the reconstruction terms weighted heavily as in pix2pix.

D's scores are a map of patch logits, or a list of maps, one per scale (a multi-scale D): each
adversarial loss is then the mean of its value at each scale.
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


Scores = torch.Tensor | list[torch.Tensor]  # D's patch logits: one map, or one per scale


def scales(scores: Scores) -> list[torch.Tensor]:
    """D's scores as a list of maps, one per scale."""
    return list(scores) if isinstance(scores, (list, tuple)) else [scores]


def _mean_over_scales(loss, *scores: Scores) -> torch.Tensor:
    per_scale = [loss(*maps) for maps in zip(*map(scales, scores))]
    return sum(per_scale) / len(per_scale)


def discriminator_loss(real_logits: Scores, fake_logits: Scores, kind: str = "bce") -> torch.Tensor:
    """D wants real cut-outs scored 1 and generated ones 0. Labels are made `*_like` the logits,
    so a short last batch or another image size needs nothing special. `kind` "hinge" (SAGAN,
    Miyato et al. 2018) asks only for real logits above 1 and fake ones below -1: D stops pushing
    on what it already tells apart with a margin. Halved, as the BCE, so that both read 0.69 or
    1.0 at chance."""

    def bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )

    def hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return 0.5 * (F.relu(1 - real).mean() + F.relu(1 + fake).mean())

    return _mean_over_scales({"bce": bce, "hinge": hinge}[kind], real_logits, fake_logits)


def adversarial_loss(fake_logits: Scores, kind: str = "bce") -> torch.Tensor:
    """G's adversarial term, to make D score its cut-outs real: BCE against 1 (the non-saturating
    loss), or, with the hinge loss, minus the mean logit."""
    if kind == "hinge":
        return _mean_over_scales(lambda fake: -fake.float().mean(), fake_logits)
    return _mean_over_scales(lambda fake: F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)), fake_logits)


def feature_matching_loss(
    fake_features: list[list[torch.Tensor]], real_features: list[list[torch.Tensor]]
) -> torch.Tensor:
    """pix2pixHD's feature matching: the L1 distance between D's layers' outputs on G's cut-out and
    on the true one (detached: a target, not something to move), averaged over layers and scales,
    the logits left out. It asks G to look like the truth to D at every depth, a steadier signal
    than D's verdict alone."""
    per_scale = []
    for fake, real in zip(fake_features, real_features):
        per_layer = [F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake[:-1], real[:-1])]
        per_scale.append(sum(per_layer) / len(per_layer))
    return sum(per_scale) / len(per_scale)


def r1_penalty(d, photo: torch.Tensor, pasted: torch.Tensor) -> torch.Tensor:
    """Mescheder et al. 2018's R1: the squared norm of the gradient of D's logits (summed over its
    patches and scales) at real inputs, a mean over the batch. It keeps D flat where the data is, so
    D cannot win by a cliff at the true cut-outs. The caller weights it by gamma / 2."""
    photo, pasted = photo.detach().requires_grad_(True), pasted.detach().requires_grad_(True)
    total = sum(s.float().sum() for s in scales(d(photo, pasted)))
    grads = torch.autograd.grad(total, [photo, pasted], create_graph=True)
    return sum(g.float().square().flatten(1).sum(1) for g in grads).mean()


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
    fake_logits: Scores,
    logits: torch.Tensor,
    target: torch.Tensor,
    rec_weight: float = 100.0,
    adv_weight: float = 1.0,
    kind: str = "bce",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """G's loss: fool D (`adversarial_loss` of D's scores of G's cut-outs), plus `rec_weight` x the
    reconstruction terms of G's `logits` against the true `target`. Returns the total and each
    term unweighted, "g_adv" first, then `reconstruction_losses`'s (tensors, for the history).
    The notebooks and `train_step` both use it."""
    terms = {"g_adv": adversarial_loss(fake_logits, kind), **reconstruction_losses(logits, target)}
    reconstruction = sum(value for name, value in terms.items() if name != "g_adv")
    return adv_weight * terms["g_adv"] + rec_weight * reconstruction, terms
