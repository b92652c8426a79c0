"""Writing a file atomically: into a temporary file beside it, then renamed over it, so that the
path holds the old file or the whole new one at every moment, never half of one; and what stopped
a write (a full disk, a read-only folder), in words.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, sync: bool = False) -> Iterator[BinaryIO]:
    """A binary file to write `path`'s new content to; renamed to `path` when the block ends, or
    removed if it raises. `sync`: the file, then its folder's entry of the new name, flushed to
    the disk, so that the new file survives a power cut. The file gets an ordinary new file's
    permissions (the process's umask applies: the system sets them as it creates it). Temporary
    files of earlier writes of `path` that were killed midway are removed then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        if sync:
            _sync_folder(path.parent)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)  # one process writes a given path at a time


def _new_temporary(path: Path) -> tuple[int, str]:
    """A new file beside `path`, `.NAME.<random>.tmp`, opened for writing: (its descriptor, its path).
    Created with mode 0o666 less the umask, as any new file (tempfile.mkstemp makes it private)."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _sync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename into it) to the disk; a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or the user's quota spent
LOCKED = (errno.EROFS, errno.EACCES, errno.EPERM)  # a read-only file system, or not ours to write
# What torch.save's zip writer raises (a RuntimeError, no errno) when a write comes up short, as on a full disk
SHORT_WRITE = ("unexpected pos", "file write failed", "failed writing")


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Free space on the file system of `folder` (or of its nearest existing parent); None if unknown."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.0f} kB"


def write_problem(exc: BaseException, path: str | os.PathLike, needed: int = 0) -> str | None:
    """Why writing `path` failed, in words with what to do, when the disk or the folder is at fault:
    full (ENOSPC, EDQUOT, or torch's RuntimeError for a short write), read-only or not writable.
    `needed`: the bytes the write takes, said beside the free space. None for any other error,
    which the caller raises as it is."""
    code = next((e.errno for e in _chain(exc) if isinstance(e, OSError) and e.errno), None)
    short = isinstance(exc, RuntimeError) and any(words in str(exc) for words in SHORT_WRITE)
    free = free_bytes(Path(path).parent)
    space = (f"it needs about {megabytes(needed)}" if needed else "") + (
        f"{', ' if needed else ''}{megabytes(free)} free" if free is not None else ""
    )
    space = f" ({space})" if space else ""
    if code in FULL or (short and free is not None and free < max(needed, 1)):
        return f"the disk is full{space}: free some space or choose another folder"
    if code in LOCKED:
        what = "the file system is read-only" if code == errno.EROFS else "no permission to write there"
        return f"{what}: choose another folder, or make this one writable"
    if code in (errno.ENOTDIR, errno.EEXIST) and not Path(path).parent.is_dir():
        return "a part of its folder's path is a file, not a folder: choose another folder"
    if short:  # a write that came up short with room to spare: an I/O error of the disk, or of the network
        first = (str(exc).splitlines() or [""])[0][:100]
        return f"the write came up short ({first}){space}: check the disk, or choose another folder"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc` and the exceptions it was raised from or while handling."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen
