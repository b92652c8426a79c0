"""What the notebooks need besides the package's API: a trained generator, whatever happened before
(a checkpoint on disk, one uploaded into Colab, or a short training run first).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CheckpointError
from ..models.checkpoint import load_checkpoint, saved_config
from ..paths import course_relative, default_checkpoint_dir
from ..settings import BEST_CHECKPOINT
from ..training.health import diverged
from ..training.loop import train
from .colab import upload_checkpoint


def ensure_checkpoint(checkpoint_dir: str | os.PathLike | None = None, profile: str = "quick") -> Path:
    """`checkpoint_dir/best.pt` (default <project>/checkpoints/best.pt) for a notebook that needs a
    trained generator, saying where it came from: the one there; else, in Colab, one you upload
    (downloaded from notebook 3); else the `profile` (quick: about a minute on a CPU), trained first.
    A checkpoint of a run that diverged is refused with one CheckpointError."""
    folder = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir()
    best = folder / BEST_CHECKPOINT
    if best.is_file():
        refuse_if_diverged(best)
        print(f"Using {course_relative(best)}.")
    elif upload_checkpoint(folder) is not None:
        refuse_if_diverged(best)
        print(f"Using the uploaded checkpoint, now {course_relative(best)}.")
    else:
        print(f"No checkpoint at {course_relative(best)} yet: training the {profile!r} profile first (about a minute).")
        train(profile=profile, checkpoint_dir=str(folder))
    return best


def refuse_if_diverged(path: Path) -> None:
    """A CheckpointError when the history in the checkpoint at `path` shows its run diverged (a
    checkpoint written before train() stopped such runs). A file that does not load is left for
    the loading to report."""
    try:
        state = load_checkpoint(path)
        problem = diverged(state.get("history") or [], saved_config(state, path))
    except CheckpointError:
        return
    if problem:
        raise CheckpointError(
            f"{path}: the run that wrote it diverged ({problem}): its generator is broken; train again with lower "
            f"lr_g / lr_d (notebook 3), or delete {path} to train the quick profile here."
        )
