"""What the notebooks need besides the package's API: a trained generator, whatever happened before
(a checkpoint on disk, one uploaded into Colab, or a short training run first).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..paths import default_checkpoint_dir
from ..settings import BEST_CHECKPOINT
from ..training.loop import train
from .colab import upload_checkpoint


def ensure_checkpoint(checkpoint_dir: str | os.PathLike | None = None, profile: str = "quick") -> Path:
    """`checkpoint_dir/best.pt` (default <project>/checkpoints/best.pt) for a notebook that needs a
    trained generator, saying where it came from: the one there; else, in Colab, one you upload
    (downloaded from notebook 3); else the `profile` (quick: about a minute on a CPU), trained first."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    best = folder / BEST_CHECKPOINT
    if best.is_file():
        print(f"Using {best}.")
    elif upload_checkpoint(folder) is not None:
        print(f"Using the uploaded checkpoint, now {best}.")
    else:
        print(f"No checkpoint at {best} yet: training the {profile!r} profile first (about a minute).")
        train(profile=profile, checkpoint_dir=str(folder))
    return best
