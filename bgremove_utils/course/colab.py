"""Google Colab forgets everything when a runtime ends, and opens each notebook in a runtime of
its own: keep the checkpoints in Google Drive (opt-in), download `best.pt` with one click, or
upload one into a new runtime. Outside Colab, nothing here does anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..paths import course_relative, default_checkpoint_dir
from ..settings import BEST_CHECKPOINT

DRIVE = Path("/content/drive")
DRIVE_CHECKPOINTS = DRIVE / "MyDrive" / "bgremove" / "checkpoints"


def in_colab() -> bool:
    return "google.colab" in sys.modules


def checkpoint_folder(keep_in_drive: bool = False) -> Path:
    """Where to train: in Colab with `keep_in_drive`, a folder of your Google Drive (mounted
    first: Colab asks you to allow it), which the next runtime finds again; else checkpoints/."""
    if not (keep_in_drive and in_colab()):
        return default_checkpoint_dir()
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount(str(DRIVE))
    DRIVE_CHECKPOINTS.mkdir(parents=True, exist_ok=True)
    return DRIVE_CHECKPOINTS


def offer_download(path: Path) -> None:
    """In Colab, send `path` to your computer (the browser's download), to upload it later into
    the runtime of notebook 4 or 5; elsewhere, say where it is."""
    if in_colab():
        from google.colab import files  # type: ignore[import-not-found]

        files.download(str(path))
        print(f"Downloading {path.name}: keep it, and upload it when notebook 4 or 5 asks for a checkpoint.")
    else:
        print(f"The checkpoint is {course_relative(path)}; notebooks 4 and 5 find it there.")


def upload_checkpoint(folder: Path) -> Path | None:
    """In Colab, an upload button for a `best.pt` downloaded earlier; the file lands as
    folder/best.pt. None outside Colab, or when nothing was uploaded."""
    if not in_colab():
        return None
    from google.colab import files  # type: ignore[import-not-found]

    print("No checkpoint in this runtime: upload the best.pt you downloaded in notebook 3 (or cancel to train one).")
    uploaded = files.upload()  # {file name: bytes}, written to the working directory too
    name = next((n for n in uploaded if n.endswith(".pt")), None)
    if name is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    (folder / BEST_CHECKPOINT).write_bytes(uploaded[name])
    Path(name).unlink(missing_ok=True)  # the copy files.upload left in the working directory
    return folder / BEST_CHECKPOINT
