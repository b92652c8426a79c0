"""Where the course keeps its data, checkpoints and outputs, whatever the working directory.

A notebook runs from `notebooks/`, the CLI from the repository root, Colab from `/content`:
all of them should find the same `data/` and `checkpoints/` folders.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The course's folder: $BGREMOVE_HOME, else the nearest parent of the working directory
    holding this repository (`pyproject.toml` beside `bgremove_utils/`), else the working
    directory itself."""
    if os.environ.get("BGREMOVE_HOME"):
        return Path(os.environ["BGREMOVE_HOME"]).expanduser()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "bgremove_utils").is_dir():
            return folder
    return cwd


def repository_file(relative: str | os.PathLike) -> Path:
    """A file of the course's repository (docs/images/..., say): under `project_root()` (a clone, or
    Colab's), else beside the installed package (an editable install run from elsewhere)."""
    for root in (project_root(), Path(__file__).resolve().parents[1]):
        if (root / relative).is_file():
            return root / relative
    raise FileNotFoundError(f"{relative}: not in {project_root()} nor beside the package; run from a clone.")


def course_relative(path: str | os.PathLike) -> Path:
    """`path` as the course names it: relative to `project_root()` when inside it (checkpoints/best.pt),
    else whole. Printed so, a message reads the same on every machine."""
    resolved, root = Path(path).resolve(), project_root().resolve()
    return resolved.relative_to(root) if resolved.is_relative_to(root) else Path(path)


def default_data_dir() -> Path:
    return project_root() / "data"


def default_sample_dir() -> Path:
    return default_data_dir() / "sample"


def default_new_photos_dir() -> Path:
    return default_data_dir() / "new_photos"


def default_real_train_dir() -> Path:
    """The downloaded real pairs (portraits, fashion photos, horses): `download real` fills it."""
    return default_data_dir() / "real-train"


def default_real_objects_dir() -> Path:
    """The shipped real pairs: DAVIS 2016 training frames of animals, vehicles and people in action."""
    return default_data_dir() / "real-objects"


def default_real_val_dir() -> Path:
    """The real test photographs: the shipped DAVIS validation frames, and the downloaded ones."""
    return default_data_dir() / "real-val"


def default_kaggle_dir() -> Path:
    return default_data_dir() / "kaggle"


def default_checkpoint_dir() -> Path:
    return project_root() / "checkpoints"


def default_output_dir() -> Path:
    return project_root() / "outputs"
