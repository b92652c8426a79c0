"""Writing a file atomically: into a temporary file beside it, then renamed over it, so that the
path holds the old file or the whole new one at every moment, never half of one.
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_UMASK = os.umask(0)  # read once, at import: os.umask can only be read by setting it
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, sync: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content to; renamed to `path` when the block ends, or
    removed if it raises. `sync`: flushed to the disk first, so that it survives a power cut.
    Temporary files of earlier writes of `path` that were killed midway are removed then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # as an ordinary new file (mkstemp makes it private to the owner)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)  # one process writes a given path at a time
