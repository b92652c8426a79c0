"""`download real`: the course's real photographs whose terms do not let it pass them on, fetched
from the public repositories that commit them, at the commits each folder's `manifest.csv` names,
built into the shipped folders' layout and checked against the SHA-256 of every built file.

A pair already in place and matching its checksums is left alone, so a download that was stopped
resumes where it stopped, and a damaged file (shipped or downloaded) is fetched again.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import os
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import scipy.io
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DownloadError
from ..files import atomic_write
from ..paths import default_data_dir

REAL_FOLDERS = ("real-train", "real-objects", "real-val")  # under data/: each with its manifest.csv
CATALOGUE = "manifest.csv"
RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/{path}"  # a file of a repository at a commit
MAT_MASKS = {"portrait": "mask", "ccp": "groundtruth"}  # the variable of a source's .mat masks: labels, 0 = background
JPEG_QUALITY = 90
TERMS = (
    "Terms: these photographs are for learning and teaching; do not pass them on. Portraits (EG1800, "
    "Shen et al. 2016): 'for academic exchange only'; fashion photos (Clothing Co-Parsing, Yang et al. 2014): cite "
    "the paper; horses (Weizmann): no terms stated; DAVIS videos from YouTube: their owners' terms. Each "
    "folder's SOURCE.md says more."
)


def read_catalogue(folder: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a real folder's `manifest.csv`: one a pair, with its size, source repository,
    commit and paths, and the SHA-256 of its built photo and mask."""
    path = Path(folder) / CATALOGUE
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except OSError as exc:
        raise DownloadError(
            f"{path}: cannot read the list of pairs ({exc.strerror}); check out the course again."
        ) from None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pair_paths(folder: Path, row: dict[str, str]) -> tuple[Path, Path]:
    """Where a pair of the catalogue lies: inputs/STEM.jpg and targets/STEM.png."""
    return folder / "inputs" / f"{row['stem']}.jpg", folder / "targets" / f"{row['stem']}.png"


def in_place(folder: Path, row: dict[str, str]) -> bool:
    """Whether both files of a pair are there and match their checksums."""
    for path, key in zip(pair_paths(folder, row), ("input_sha256", "target_sha256")):
        try:
            if _sha256(path.read_bytes()) != row[key]:
                return False
        except OSError:
            return False
    return True


def _mask(row: dict[str, str], data: bytes) -> np.ndarray:
    """The source's mask as a boolean array: a `.mat` file's label map (above 0: the object), or a
    grey picture's pixels at 128 or more (Weizmann stores its masks as JPEG: binarised first)."""
    if row["mask_path"].endswith(".mat"):
        return scipy.io.loadmat(io.BytesIO(data))[MAT_MASKS[row["source"]]] > 0
    return np.asarray(Image.open(io.BytesIO(data)).convert("L")) >= 128


def build_pair(row: dict[str, str], photo: bytes, mask: bytes) -> tuple[bytes, bytes]:
    """A source's photo and mask made into the course's layout: the photo RGB at the catalogue's
    size (LANCZOS when scaled) as JPEG, the mask 0/255 scaled to the same size (BILINEAR: soft edges)
    as an 8-bit grey PNG. Returns the two files' bytes."""
    size = (int(row["width"]), int(row["height"]))
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    if image.size != size:
        image = image.resize(size, Image.LANCZOS)
    matte = Image.fromarray(_mask(row, mask).astype(np.uint8) * 255, "L")
    if matte.size != size:
        matte = matte.resize(size, Image.BILINEAR)
    jpeg, png = io.BytesIO(), io.BytesIO()
    image.save(jpeg, "JPEG", quality=JPEG_QUALITY)
    matte.save(png, "PNG")
    return jpeg.getvalue(), png.getvalue()


def fetch(url: str, timeout: float = 30.0) -> bytes:
    """A file's bytes; a transfer cut short is an OSError, as a network error is."""
    request = urllib.request.Request(url, headers={"User-Agent": "bgremove-course"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except http.client.HTTPException as exc:  # IncompleteRead: the connection closed mid-file
        raise OSError(f"{url}: the transfer was cut short ({type(exc).__name__})") from None


@dataclass
class Download:
    """What `download_real` did: the pairs fetched (by source), those already in place, and each
    that failed with why."""

    root: Path
    fetched: Counter = field(default_factory=Counter)
    in_place: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        got = ", ".join(f"{n:,} {source}" for source, n in sorted(self.fetched.items())) or "none"
        lines = [
            f"Fetched and checked {sum(self.fetched.values()):,} pairs ({got}); {self.in_place:,} already in place."
        ]
        lines.append(f"Where: {', '.join(str(self.root / name) for name in REAL_FOLDERS)}.")
        if self.failed:
            named = "; ".join(f"{stem} ({why})" for stem, why in self.failed[:5])
            more = f"; and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
            lines.append(
                f"{len(self.failed):,} pair(s) failed: {named}{more}. Run the same command again: what is in "
                "place is kept and only these are fetched."
            )
        return "\n".join(lines)


def _get_pair(row: dict[str, str], url: str) -> tuple[bytes, bytes]:
    """Fetch a pair's two source files and build it (`build_pair`); a transfer that fails, a source
    that does not decode or built files that do not match the catalogue's checksums are tried once
    more, then refused (ValueError, saying why)."""
    problem = ""
    for _ in range(2):
        try:
            photo, mask = (fetch(url.format(path=row[key], **row)) for key in ("orig_path", "mask_path"))
            built = build_pair(row, photo, mask)
        except OSError as exc:
            problem = str(getattr(exc, "reason", exc))
            continue
        except Exception as exc:  # Pillow or scipy on a damaged file: any of their errors
            problem = f"the source files do not decode ({type(exc).__name__})"
            continue
        if (_sha256(built[0]), _sha256(built[1])) == (row["input_sha256"], row["target_sha256"]):
            return built
        problem = "built from its source, it does not match its checksum in manifest.csv"
    raise ValueError(problem)


def _first_problem(url: str, row: dict[str, str]) -> str | None:
    """None when the first source file can be fetched; else why not (no network, a host not found...)."""
    try:
        fetch(url.format(path=row["orig_path"], **row))
    except urllib.error.HTTPError as exc:
        return f"{urlsplit(exc.url or url).netloc} answered {exc.code} {exc.reason}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach {urlsplit(url).netloc} ({reason})"
    return None


def download_real(
    root: str | os.PathLike | None = None,
    url: str = RAW_URL,
    force: bool = False,
    workers: int = 8,
    progress: bool = True,
) -> Download:
    """Fetch every pair of the real folders under `root` (default: data/) that is missing or whose
    files do not match their checksums (`force`: every pair), from `url` (a template of repo,
    commit and path: GitHub's raw files), build each (`build_pair`) and write its two files,
    checked, in place. With no network it raises one DownloadError and changes nothing; a pair
    that fails is listed in the returned `Download` and the others are kept."""
    root = Path(root) if root is not None else default_data_dir()
    result = Download(root)
    todo = []
    for name in REAL_FOLDERS:
        folder = root / name
        for row in read_catalogue(folder):
            if not force and in_place(folder, row):
                result.in_place += 1
            else:
                todo.append((folder, row))
    if not todo:
        return result
    problem = _first_problem(url, todo[0][1])
    if problem:
        raise DownloadError(f"no download: {problem}; nothing was changed. Connect to the internet and run it again.")
    if progress:
        print(TERMS)

    def get(job: tuple[Path, dict]) -> tuple[dict, str | None]:
        folder, row = job
        try:
            photo, mask = _get_pair(row, url)
        except ValueError as exc:
            return row, str(exc)
        for path, data in zip(pair_paths(folder, row), (photo, mask)):
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(path) as handle:
                handle.write(data)
        return row, None

    with ThreadPoolExecutor(workers) as pool:
        for row, why in tqdm(
            pool.map(get, todo), total=len(todo), desc="real pairs", unit="pair", disable=not progress
        ):
            if why is None:
                result.fetched[row["source"]] += 1
            else:
                result.failed.append((row["stem"], why))
    return result
