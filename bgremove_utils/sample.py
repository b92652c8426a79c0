"""Make the course's own paired sample data, offline and deterministically from a seed.

Each pair is a photo-like picture of objects on a textured background (`with_bg/`) and an RGBA
PNG of the same stem whose alpha is the true soft matte (`no_bg/`), as in the Kaggle data set.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .files import atomic_write
from .paths import default_sample_dir

INPUT_DIR = "with_bg"
TARGET_DIR = "no_bg"
MANIFEST = "manifest.json"
SPLIT_FRACTIONS = {"train": 0.8, "val": 0.1, "test": 0.1}
_SUPERSAMPLE = 2  # draw shapes at twice the size, then downsample: anti-aliased edges
VERSION = 2  # of the drawing code: a sample made by another version is rebuilt


def _smooth_noise(rng: np.random.Generator, size: int, cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a small random grid upsampled bicubically."""
    grid = rng.random((cells, cells, channels)).astype(np.float32)
    layers = [Image.fromarray(grid[..., c]).resize((size, size), Image.BICUBIC) for c in range(channels)]
    return np.clip(np.stack([np.asarray(layer) for layer in layers], -1), 0, 1)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.random(3).astype(np.float32)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A textured background (H, W, 3) in [0, 1]: gradients, noise, stripes, checkers, blobs."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = _random_colour(rng)
    b = a + (_random_colour(rng) - a) * rng.uniform(0.2, 0.5)  # a second colour, of moderate contrast
    kind = rng.choice(["gradient", "noise", "stripes", "checkers", "blobs"])
    if kind == "gradient":
        b = _random_colour(rng)  # gradients may span any two colours: no single colour is "the background"
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * xx + np.sin(angle) * yy)[..., None]
        bg = a + (b - a) * (t - t.min()) / (np.ptp(t) + 1e-6)
    elif kind == "noise":
        bg = a + rng.uniform(0.2, 0.5) * (_smooth_noise(rng, size, int(rng.integers(3, 12)), 3) - 0.5)
    elif kind == "stripes":
        angle, freq = rng.uniform(0, np.pi), rng.uniform(3, 12)
        t = (np.sin(2 * np.pi * freq * (np.cos(angle) * xx + np.sin(angle) * yy)) > 0)[..., None]
        bg = np.where(t, a, b)
    elif kind == "checkers":
        n = int(rng.integers(3, 10))
        t = ((np.floor(xx * n) + np.floor(yy * n)) % 2)[..., None]
        bg = a * (1 - t) + b * t
    else:
        blobs = _smooth_noise(rng, size, int(rng.integers(2, 5)), 1)
        bg = a * (1 - blobs) + _random_colour(rng) * blobs
    grain = rng.normal(0, rng.uniform(0, 0.04), (size, size, 1)).astype(np.float32)
    return np.clip(bg + grain, 0, 1).astype(np.float32)


def _star(cx: float, cy: float, r: float, points: int, inner: float, rot: float) -> list[tuple]:
    angles = rot + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, r, r * inner)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))


def _polygon(rng: np.random.Generator, cx: float, cy: float, r: float) -> list[tuple]:
    n = int(rng.integers(3, 9))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.5, 1.0, n)
    return list(zip(cx + radii * np.cos(angles), cy + radii * np.sin(angles)))


def _draw_shape(rng: np.random.Generator, draw: ImageDraw.ImageDraw, big: int, main: bool) -> None:
    """One shape on a supersampled mask. The main one is large and near the middle, as the subject
    of a photo is; others are smaller and anywhere, near or past the border."""
    if main:
        r, (cx, cy) = big * rng.uniform(0.2, 0.42), rng.uniform(0.25, 0.75, 2) * big
    else:
        r, (cx, cy) = big * rng.uniform(0.1, 0.3), rng.uniform(-0.1, 1.1, 2) * big
    kind = rng.choice(["ellipse", "polygon", "star", "ring", "stick"])
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
    else:  # a thin part: a handle, a stem, a cable
        angle = rng.uniform(0, np.pi)
        dx, dy = np.cos(angle) * r * 1.6, np.sin(angle) * r * 1.6
        width = int(big * rng.uniform(0.025, 0.06))  # 1.6 to 4 px at 64 px: thin, yet still there
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=255, width=width)
        knob = r * rng.uniform(0.3, 0.6)
        draw.ellipse([cx + dx - knob, cy + dy - knob, cx + dx + knob, cy + dy + knob], fill=255)


def _matte(rng: np.random.Generator, size: int) -> np.ndarray:
    """A soft alpha matte (H, W) in [0, 1] of one to three anti-aliased shapes."""
    big = size * _SUPERSAMPLE
    while True:
        mask = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(mask)
        for i in range(int(rng.choice([1, 1, 2, 3]))):
            _draw_shape(rng, draw, big, main=i == 0)
        mask = mask.resize((size, size), Image.BOX)
        softness = rng.choice([0.0, 0.5, 1.0, 2.0])
        if softness:
            mask = mask.filter(ImageFilter.GaussianBlur(float(softness)))
        alpha = np.asarray(mask, dtype=np.float32) / 255.0
        if 0.03 < alpha.mean() < 0.7:  # neither an empty picture nor all object
            return alpha


def _object_colours(rng: np.random.Generator, alpha: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """Object colours (H, W, 3): lit like a solid thing (brighter inside, darker at the rim, a
    highlight), textured, and sometimes of the background's own colour."""
    size = alpha.shape[0]
    mean = bg.reshape(-1, 3).mean(0)
    base = _random_colour(rng)
    if rng.random() < 0.1:  # camouflage: the background's own colour, told apart by edges and texture
        base = mean
    else:
        while np.abs(base - mean).max() < 0.3:  # otherwise an object stands out, as most do in photos
            base = _random_colour(rng)
    radius = float(rng.uniform(3, 10)) * size / 256
    mask = Image.fromarray((alpha * 255).astype(np.uint8))
    bulge = np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.8 + 0.4 * (np.cos(angle) * xx + np.sin(angle) * yy - 0.5)
    shading = (0.7 + 0.3 * bulge) * light
    texture = _smooth_noise(rng, size, int(rng.integers(8, 40)), 1)[..., 0] - 0.5
    obj = base * shading[..., None] + rng.uniform(0.08, 0.3) * texture[..., None]
    obj = obj + 0.25 * bulge[..., None] ** 4 * rng.uniform(0, 1)  # a soft highlight
    return np.clip(obj, 0, 1).astype(np.float32)


def make_pair(index: int, size: int = 256, seed: int = 0) -> tuple[Image.Image, Image.Image]:
    """The pair number `index`: (photo RGB, cut-out RGBA), the same for the same arguments."""
    rng = np.random.default_rng([seed, index])
    bg = _background(rng, size)
    if rng.random() < 0.5:  # depth of field: the background a little out of focus
        blurred = Image.fromarray((bg * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
        bg = np.asarray(blurred, dtype=np.float32) / 255.0
    alpha = _matte(rng, size)
    obj = _object_colours(rng, alpha, bg)
    shift = rng.integers(-size // 20, size // 20 + 1, 2)
    shadow = np.roll(alpha, tuple(shift), axis=(0, 1))
    bg = bg * (1 - rng.uniform(0.0, 0.4) * shadow[..., None])  # a drop shadow stays background
    photo = alpha[..., None] * obj + (1 - alpha[..., None]) * bg
    photo = np.clip(photo + rng.normal(0, 0.01, photo.shape), 0, 1)
    rgba = np.concatenate([obj * (alpha[..., None] > 0), alpha[..., None]], -1)
    to8 = lambda a: (a * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(to8(photo), "RGB"), Image.fromarray(to8(rgba), "RGBA")


def _write_pair(args: tuple[Path, int, int, int]) -> tuple[str, str]:
    root, index, size, seed = args
    photo, cutout = make_pair(index, size, seed)
    stem = f"sample_{index:05d}"
    # About a third of the photos are JPEGs, as in a real folder of pictures.
    ext = ".jpg" if np.random.default_rng([seed, index, 1]).random() < 0.35 else ".png"
    photo_name = stem + ext
    if ext == ".jpg":
        photo.save(root / INPUT_DIR / photo_name, quality=92)
    else:
        photo.save(root / INPUT_DIR / photo_name)
    cutout.save(root / TARGET_DIR / f"{stem}.png")
    return photo_name, f"{stem}.png"


def _split(stems: list[str], seed: int) -> dict[str, list[str]]:
    order = np.random.default_rng([seed, 2**31 - 1]).permutation(len(stems))
    n_train = int(round(len(stems) * SPLIT_FRACTIONS["train"]))
    n_val = int(round(len(stems) * SPLIT_FRACTIONS["val"]))
    shuffled = [stems[i] for i in order]
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def read_manifest(root: str | os.PathLike) -> dict | None:
    """The sample's manifest (arguments, file names, split), or None if there is none."""
    path = Path(root) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def make_sample(
    root: str | os.PathLike | None = None,
    n_pairs: int = 600,
    size: int = 256,
    seed: int = 0,
    workers: int | None = None,
) -> Path:
    """Write `n_pairs` photo/cut-out pairs under `root` and return it.

    Deterministic from `seed`; a second call with the same arguments does nothing, other
    arguments (or a sample drawn by an older version of this code) rebuild it. The
    train/val/test split is written in `manifest.json`.
    """
    if n_pairs < 3:
        raise ValueError(f"n_pairs must be at least 3 (one pair per split), got {n_pairs}")
    root = Path(root) if root is not None else default_sample_dir()
    args = {"n_pairs": n_pairs, "size": size, "seed": seed, "version": VERSION}
    old = read_manifest(root)
    if old and old.get("args") == args and _files_present(root, old):
        return root
    if old:  # other arguments: remove what the last call wrote, and only that
        for name in old.get("inputs", []):
            (root / INPUT_DIR / name).unlink(missing_ok=True)
        for name in old.get("targets", []):
            (root / TARGET_DIR / name).unlink(missing_ok=True)
        (root / MANIFEST).unlink(missing_ok=True)
    (root / INPUT_DIR).mkdir(parents=True, exist_ok=True)
    (root / TARGET_DIR).mkdir(parents=True, exist_ok=True)
    jobs = [(root, i, size, seed) for i in range(n_pairs)]
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers > 1 and n_pairs >= 50:
        with ProcessPoolExecutor(workers) as pool:
            names = list(pool.map(_write_pair, jobs, chunksize=16))
    else:
        names = [_write_pair(job) for job in jobs]
    manifest = {
        "args": args,
        "input_dir": INPUT_DIR,
        "target_dir": TARGET_DIR,
        "inputs": [n for n, _ in names],
        "targets": [t for _, t in names],
        "split": _split([Path(t).stem for _, t in names], seed),
    }
    with atomic_write(root / MANIFEST) as handle:  # written last: an interrupted run is redone next time
        handle.write(json.dumps(manifest, indent=1).encode())
    return root


def _files_present(root: Path, manifest: dict) -> bool:
    inputs = root / manifest.get("input_dir", INPUT_DIR)
    targets = root / manifest.get("target_dir", TARGET_DIR)
    return all((inputs / n).is_file() for n in manifest.get("inputs", [])) and all(
        (targets / n).is_file() for n in manifest.get("targets", [])
    )
