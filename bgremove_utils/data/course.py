"""The course's own data: the real pairs it trains on by default and the real test photographs it
scores on, whichever of them are here (the shipped ones always; the downloaded ones after
`python -m bgremove_utils download real`), and one line that says which.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from ..paths import default_real_objects_dir, default_real_train_dir, default_real_val_dir
from .real_download import CATALOGUE, in_place, pair_paths, read_catalogue
from .sample import make_sample

GET_THE_REST = "python -m bgremove_utils download real"


def downloaded(folder: Path | None = None) -> bool:
    """Whether every pair of the downloaded real folder (default: data/real-train) is in place and
    checked against its manifest: the portraits, fashion photos and horses."""
    folder = folder or default_real_train_dir()
    rows = read_catalogue(folder) if (folder / "manifest.csv").is_file() else []
    return bool(rows) and all(in_place(folder, row) for row in rows)


def course_data_root() -> str:
    """The pairs the course trains on when no folder is named, as one `data_root`: the downloaded
    real pairs with the shipped video frames; without the download, the video frames with the
    course's drawn sample (made first if missing), which scored higher on real photographs than
    either alone (docs/real-photos.md)."""
    if downloaded():
        folders = [default_real_train_dir(), default_real_objects_dir()]
    else:
        folders = [default_real_objects_dir(), make_sample()]
    return os.pathsep.join(str(folder) for folder in folders)


def course_data_line() -> str:
    """What the course trains and scores on here, and how to get the rest: one line for a learner."""
    if downloaded():
        return (
            "Training on the course's real pairs (portraits, fashion photos, horses and video frames); "
            "scoring on all its real test photographs."
        )
    return (
        "Training on the shipped real video frames and the drawn sample; scoring on the shipped real test "
        f"frames. For the portraits, fashion photos and horses too (academic and teaching use): {GET_THE_REST}"
    )


def shareable(pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """The pairs whose photographs may be shown in what the course publishes (its notebooks are
    stored with their figures): all but those a course folder's `manifest.csv` lists as not
    shipped, whose terms do not let the course pass them on (the portraits, fashion photos and
    horses). A folder of your own, or the drawn sample, is kept whole."""
    return [pair for pair in pairs if pair[0].stem not in _not_shipped(pair[0].parent.parent)]


@cache
def _not_shipped(folder: Path) -> frozenset[str]:
    """The stems a real folder's manifest lists as downloaded only (empty for any other folder)."""
    if not (folder / CATALOGUE).is_file():
        return frozenset()
    return frozenset(row["stem"] for row in read_catalogue(folder) if row.get("shipped") == "no")


def shipped_photos(folder: Path | None = None) -> list[Path]:
    """The real test photographs that ship with the course (DAVIS video frames, CC BY 4.0), as
    listed in the manifest of `folder` (default: data/real-val), those that are there: what every
    copy of the course has, for examples on a page or a test."""
    folder = folder or default_real_val_dir()
    rows = read_catalogue(folder) if (folder / CATALOGUE).is_file() else []
    photos = [pair_paths(folder, row)[0] for row in rows if row.get("shipped") == "yes"]
    return [path for path in photos if path.is_file()]
