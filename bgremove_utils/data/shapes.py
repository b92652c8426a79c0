"""The sample's objects as soft alpha mattes: geometric shapes, smooth organic blobs, figures with
a head and limbs, and a real animal's silhouette, drawn supersampled so that edges are anti-aliased.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .photos import horse_silhouette

SUPERSAMPLE = 2  # draw at twice the size, then downsample: anti-aliased edges
KINDS = ("ellipse", "polygon", "star", "ring", "stick", "blob", "blob", "figure", "figure", "horse")


def _star(cx: float, cy: float, r: float, points: int, inner: float, rot: float) -> list[tuple]:
    angles = rot + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, r, r * inner)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))


def _polygon(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple]:
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.5, 1.0, n)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))


def _blob(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple]:
    """A smooth organic outline: a circle whose radius wanders with a few low harmonics."""
    angles = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    radius = np.ones_like(angles)
    for k in range(2, 6):
        radius += rng.normal(0, 0.25 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    radius = r * np.clip(radius, 0.35, 1.6) * np.where(np.cos(angles) ** 2 > 0.5, 1.0, rng.uniform(0.6, 1.0))
    return list(zip(cx + radius * np.cos(angles), cy + radius * np.sin(angles)))


def _figure(rng: np.random.Generator, draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float) -> None:
    """A body with a head and two to four limbs: the outline of a person or an animal."""
    body_w, body_h = r * rng.uniform(0.35, 0.6), r * rng.uniform(0.55, 0.9)
    upright = rng.random() < 0.5  # a standing person, else a four-legged animal
    if not upright:
        body_w, body_h = body_h * 1.2, body_w * 0.8
    draw.ellipse([cx - body_w, cy - body_h, cx + body_w, cy + body_h], fill=255)
    head = r * rng.uniform(0.18, 0.3)
    hx, hy = (cx, cy - body_h - head * 0.8) if upright else (cx + body_w + head * 0.6, cy - body_h * 0.9)
    draw.ellipse([hx - head, hy - head, hx + head, hy + head], fill=255)
    width = max(2, int(r * rng.uniform(0.1, 0.2)))
    for i in range(int(rng.integers(2, 5))):
        x0 = cx + (rng.uniform(-0.8, 0.8) * body_w)
        y0 = cy + body_h * (0.6 if not upright or i < 2 else -0.3)
        angle = np.pi / 2 + rng.uniform(-0.5, 0.5) + (0 if not upright or i < 2 else rng.choice([-1.2, 1.2]))
        length = r * rng.uniform(0.5, 0.9)
        draw.line([x0, y0, x0 + np.cos(angle) * length, y0 + np.sin(angle) * length], fill=255, width=width)


def _horse(rng: np.random.Generator, mask: Image.Image, cx: float, cy: float, r: float) -> None:
    """scikit-image's horse silhouette, scaled, mirrored and tilted a little."""
    silhouette = Image.fromarray((horse_silhouette() * 255).astype(np.uint8))
    scale = 2 * r / max(silhouette.size)
    silhouette = silhouette.resize((int(silhouette.width * scale), int(silhouette.height * scale)), Image.BILINEAR)
    if rng.random() < 0.5:
        silhouette = silhouette.transpose(Image.FLIP_LEFT_RIGHT)
    silhouette = silhouette.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR, expand=True)
    corner = (int(cx - silhouette.width / 2), int(cy - silhouette.height / 2))
    mask.paste(255, corner, silhouette)


def _draw_shape(rng: np.random.Generator, mask: Image.Image, main: bool) -> None:
    """One shape on a supersampled mask. The main one is large and near the middle, as the subject
    of a photo is; others are smaller and anywhere, near or past the border."""
    big, draw = mask.width, ImageDraw.Draw(mask)
    if main:
        r, (cx, cy) = big * rng.uniform(0.2, 0.42), rng.uniform(0.25, 0.75, 2) * big
    else:
        r, (cx, cy) = big * rng.uniform(0.1, 0.3), rng.uniform(-0.1, 1.1, 2) * big
    kind = rng.choice(KINDS)
    if kind == "ellipse":
        rx, ry = r, r * rng.uniform(0.4, 1.0)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=255)
    elif kind == "polygon":
        draw.polygon(_polygon(rng, cx, cy, r), fill=255)
    elif kind == "star":
        points, inner = int(rng.integers(4, 8)), rng.uniform(0.35, 0.6)
        draw.polygon(_star(cx, cy, r, points, inner, rng.uniform(0, np.pi)), fill=255)
    elif kind == "ring":
        hole = r * rng.uniform(0.35, 0.7)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        draw.ellipse([cx - hole, cy - hole, cx + hole, cy + hole], fill=0)
    elif kind == "stick":  # a thin part: a handle, a stem, a cable
        angle = rng.uniform(0, np.pi)
        dx, dy = np.cos(angle) * r * 1.6, np.sin(angle) * r * 1.6
        width = int(big * rng.uniform(0.025, 0.06))  # 1.6 to 4 px at 64 px: thin, yet still there
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=255, width=width)
        knob = r * rng.uniform(0.3, 0.6)
        draw.ellipse([cx + dx - knob, cy + dy - knob, cx + dx + knob, cy + dy + knob], fill=255)
    elif kind == "blob":
        draw.polygon(_blob(rng, cx, cy, r), fill=255)
    elif kind == "figure":
        _figure(rng, draw, cx, cy, r * 1.3)
    else:
        _horse(rng, mask, cx, cy, r * 1.3)


def make_matte(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft alpha matte (H, W) in [0, 1] of one to three anti-aliased shapes."""
    big = size * SUPERSAMPLE
    while True:
        mask = Image.new("L", (big, big), 0)
        for i in range(int(rng.choice([1, 1, 2, 3]))):
            _draw_shape(rng, mask, main=i == 0)
        mask = mask.resize((size, size), Image.BOX)
        softness = rng.choice([0.0, 0.5, 1.0, 2.0])
        if softness:
            mask = mask.filter(ImageFilter.GaussianBlur(float(softness)))
        alpha = np.asarray(mask, dtype=np.float32) / 255.0
        if 0.03 < alpha.mean() < 0.7:  # neither an empty picture nor all object
            return alpha
