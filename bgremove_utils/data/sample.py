"""Make the course's own paired sample data, offline and deterministically from a seed.

Each pair is a photo of objects (`with_bg/`) and an RGBA PNG of the same stem whose alpha is the
true soft matte (`no_bg/`), as in the Kaggle data set. The objects are the mattes of `shapes`,
coloured like solid things (shaded, textured with procedural noise or with crops of real
photographs) and pasted on `backgrounds`: crops of real photographs and textures. The default
sample draws on the `train` photos of `photos`; the new-photos split only on the `new_photos` ones.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

from ..files import atomic_write
from ..paths import default_new_photos_dir, default_sample_dir
from .backgrounds import PHOTO_SHARE, Backgrounds, paste, recolour
from .pairs import INPUT_DIR, MANIFEST, TARGET_DIR, read_manifest, split
from .photos import load_photos, real_cutouts
from .shapes import make_matte

VERSION = 3  # of the drawing code: a sample made by another version is rebuilt
REAL_SURFACES = 0.6  # of the sample's objects, the share with a real photo's surface; the rest plain and noisy


@cache
def _backgrounds(photos: str, size: int) -> Backgrounds:
    """The new-photos split's backgrounds are all real photos; the sample's, mostly."""
    return Backgrounds(load_photos(photos), size, photo_share=1.0 if photos == "new_photos" else PHOTO_SHARE)


def _texture(rng: np.random.Generator, size: int, photos: tuple[np.ndarray, ...]) -> np.ndarray:
    """A surface for an object (S, S, 3) in [0, 1]: a recoloured crop of a real photo."""
    photo = photos[int(rng.integers(len(photos)))]
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.15, 0.7))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[top : top + side, left : left + side]).resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(crop, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return recolour(x, generator)[0].permute(1, 2, 0).numpy()


def _object_colours(rng: np.random.Generator, alpha: np.ndarray, bg: np.ndarray, photos: str) -> np.ndarray:
    """Object colours (H, W, 3): lit like a solid thing (brighter inside, darker at the rim, a
    highlight), textured (a real photo's surface, or noise on a plain colour), and standing out
    from the background, except sometimes (camouflage: told apart by edges and texture only).
    The new-photos split's objects all have real photos' surfaces."""
    size, mean = alpha.shape[0], bg.reshape(-1, 3).mean(0)
    radius = float(rng.uniform(3, 10)) * size / 256
    mask = Image.fromarray((alpha * 255).astype(np.uint8))
    bulge = np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = 0.8 + 0.4 * (np.cos(angle) * xx + np.sin(angle) * yy - 0.5)
    shading = ((0.7 + 0.3 * bulge) * light)[..., None]
    if photos == "new_photos" or rng.random() < REAL_SURFACES:
        obj = _texture(rng, size, load_photos(photos)) * (0.6 + 0.4 * shading)
    else:
        base = mean if rng.random() < 0.1 else rng.random(3).astype(np.float32)
        noise = np.asarray(Image.fromarray(rng.random((24, 24)).astype(np.float32)).resize((size, size)))
        obj = base * shading + rng.uniform(0.08, 0.3) * (noise[..., None] - 0.5)
    inside = obj[alpha > 0.5].mean(0) if (alpha > 0.5).any() else obj.reshape(-1, 3).mean(0)
    if np.abs(inside - mean).max() < 0.25 and rng.random() < 0.85:  # make most objects stand out
        obj = obj + np.sign(inside - mean + 1e-3) * rng.uniform(0.2, 0.4)
    obj = obj + 0.25 * bulge[..., None] ** 4 * rng.uniform(0, 1)  # a soft highlight
    return np.clip(obj, 0, 1).astype(np.float32)


def _real_cutout(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A real RGBA cut-out (a present, a logo), scaled and placed: (colours (S, S, 3), alpha (S, S))."""
    rgba = Image.fromarray(real_cutouts()[int(rng.integers(len(real_cutouts())))])
    scale = size * rng.uniform(0.45, 0.85) / max(rgba.size)
    rgba = rgba.resize((max(1, int(rgba.width * scale)), max(1, int(rgba.height * scale))), Image.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    corner = (rng.uniform(0.1, 0.9, 2) * (size - np.array(rgba.size))).astype(int)
    canvas.paste(rgba, tuple(corner))
    array = np.asarray(canvas, dtype=np.float32) / 255
    return array[..., :3], array[..., 3]


def make_pair(index: int, size: int = 256, seed: int = 0, photos: str = "train") -> tuple[Image.Image, Image.Image]:
    """The pair number `index`: (photo RGB, cut-out RGBA), the same for the same arguments.
    `photos`: which real photos it may use, "train" (the sample) or "new_photos"."""
    rng = np.random.default_rng([seed, index])
    generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
    bg = _backgrounds(photos, size).draw(1, generator)  # (1, 3, S, S)
    if photos == "new_photos" and rng.random() < 0.2:
        obj, alpha = _real_cutout(rng, size)
    else:
        alpha = make_matte(rng, size)
        obj = _object_colours(rng, alpha, bg[0].permute(1, 2, 0).numpy(), photos)
    obj = obj * (alpha[..., None] > 0)  # no colour where there is no object
    cutout = torch.from_numpy(np.concatenate([obj, alpha[..., None]], -1)).permute(2, 0, 1)[None].float()
    photo = paste(cutout, bg, generator)[0].permute(1, 2, 0).numpy()
    to8 = lambda a: (a * 255 + 0.5).astype(np.uint8)
    rgba = cutout[0].permute(1, 2, 0).numpy()
    return Image.fromarray(to8(photo), "RGB"), Image.fromarray(to8(rgba), "RGBA")


def _write_pair(args: tuple[Path, int, int, int, str]) -> tuple[str, str]:
    root, index, size, seed, photos = args
    torch.set_num_threads(1)  # one process per core already
    photo, cutout = make_pair(index, size, seed, photos)
    stem = f"{'sample' if photos == 'train' else photos}_{index:05d}"
    # About a third of the photos are JPEGs, as in a real folder of pictures.
    ext = ".jpg" if np.random.default_rng([seed, index, 1]).random() < 0.35 else ".png"
    photo_name = stem + ext
    if ext == ".jpg":
        photo.save(root / INPUT_DIR / photo_name, quality=92)
    else:
        photo.save(root / INPUT_DIR / photo_name)
    cutout.save(root / TARGET_DIR / f"{stem}.png")
    return photo_name, f"{stem}.png"


def make_sample(
    root: str | os.PathLike | None = None,
    n_pairs: int = 600,
    size: int = 256,
    seed: int = 0,
    workers: int | None = None,
    photos: str = "train",
) -> Path:
    """Write `n_pairs` photo/cut-out pairs under `root` and return it.

    Deterministic from `seed`; a second call with the same arguments does nothing, other
    arguments (or a sample drawn by an older version of this code) rebuild it. The
    train/val/test split is written in `manifest.json`. `photos="new_photos"` makes the new-photos
    split instead: pictures of the photos training never sees, all of them in its `test` split.
    """
    if n_pairs < 3:
        raise ValueError(f"n_pairs must be at least 3 (one pair per split), got {n_pairs}")
    root = Path(root) if root is not None else default_sample_dir()
    args = {"n_pairs": n_pairs, "size": size, "seed": seed, "photos": photos, "version": VERSION}
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
    jobs = [(root, i, size, seed, photos) for i in range(n_pairs)]
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers > 1 and n_pairs >= 50:
        with ProcessPoolExecutor(workers) as pool:
            names = list(pool.map(_write_pair, jobs, chunksize=16))
    else:
        names = [_write_pair(job) for job in jobs]
    stems = [Path(t).stem for _, t in names]
    splits = {k: sorted(v) for k, v in split(stems, seed).items()} if photos == "train" else {"test": sorted(stems)}
    manifest = {
        "args": args,
        "input_dir": INPUT_DIR,
        "target_dir": TARGET_DIR,
        "inputs": [n for n, _ in names],
        "targets": [t for _, t in names],
        "split": {"train": [], "val": [], **splits},
    }
    with atomic_write(root / MANIFEST) as handle:  # written last: an interrupted run is redone next time
        handle.write(json.dumps(manifest, indent=1).encode())
    return root


def make_new_photos(root: str | os.PathLike | None = None, n_pairs: int = 120, size: int = 256) -> Path:
    """The new-photos split (default data/new_photos): `n_pairs` pictures made only of the photos that
    training never sees, and of real cut-outs; made once, deterministically."""
    return make_sample(root or default_new_photos_dir(), n_pairs=n_pairs, size=size, seed=1, photos="new_photos")


def _files_present(root: Path, manifest: dict) -> bool:
    inputs = root / manifest.get("input_dir", INPUT_DIR)
    targets = root / manifest.get("target_dir", TARGET_DIR)
    return all((inputs / n).is_file() for n in manifest.get("inputs", [])) and all(
        (targets / n).is_file() for n in manifest.get("targets", [])
    )
