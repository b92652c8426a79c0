"""One training run per checkpoint folder: a lock file the run holds from start to end, so that a
second run on the same folder (a second kernel, the CLI beside a notebook) stops at once, named.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..errors import CheckpointError
from ..files import write_problem
from .distributed import Process

LOCK_FILE = "run.lock"  # in a checkpoint folder while a run trains there: {"pid", "host", "since", ...}


def _write_lock(path: Path) -> dict:
    """Create `path` if nobody has (os.open with O_CREAT | O_EXCL: atomic, also on NFS v3+) and
    write this run's pid, host and start into it; FileExistsError when another run holds it."""
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "token": uuid.uuid4().hex}
    program = "python -m bgremove_utils" if sys.argv[0].endswith("__main__.py") else Path(sys.argv[0]).name
    mine["command"] = " ".join([program, *sys.argv[1:]])[:200]  # for a person who opens the file
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(mine, handle)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return mine


def _read_lock(path: Path) -> dict | None:
    """The holder's record; {} while it is being written or when unreadable; None once it is gone."""
    for _ in range(20):  # a lock created a moment ago may not hold its record yet
        try:
            holder = json.loads(path.read_text())
            if isinstance(holder, dict) and "pid" in holder:
                return holder
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


def _alive(pid: int) -> bool:
    """Whether a process of that id runs on this machine (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def is_stale(holder: dict) -> bool:
    """A lock left by a run that is gone: written on this host by a process no longer alive (a run
    killed with SIGKILL, a kernel restarted). A lock of another host is never judged stale: its
    process cannot be seen from here."""
    if not holder or holder.get("host") != socket.gethostname():
        return False
    return holder["pid"] != os.getpid() and not _alive(int(holder["pid"]))


def _in_use(folder: Path, holder: dict) -> CheckpointError:
    lock = folder / LOCK_FILE
    if not holder:
        who = f"a run whose lock file cannot be read ({lock})"
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
        who = f"pid {holder['pid']} on {holder.get('host', '?')}, since {since}"
    return CheckpointError(
        f"{folder}: another training run is using this checkpoint folder ({who}); wait for it to end, "
        f"or train with another --checkpoint-dir (checkpoint_dir=...); if no such run is going on, delete {lock}."
    )


def acquire(folder: Path) -> dict:
    """Take the lock of `folder` (made if missing), taking over a stale one; this run's record. A
    CheckpointError when another run holds it, or when the folder cannot be written."""
    lock = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a stale lock removed: try again (another run may have taken it meanwhile)
            try:
                return _write_lock(lock)
            except FileExistsError:
                holder = _read_lock(lock)
                if holder is not None and not is_stale(holder):
                    raise _in_use(folder, holder) from None
                if holder:
                    print(f"Taking over {lock}: its run (pid {holder['pid']}) is gone.")
                    lock.unlink(missing_ok=True)
        raise _in_use(folder, _read_lock(lock) or {})
    except OSError as exc:  # the folder cannot be made or written: said now, not after an epoch of training
        problem = write_problem(exc, lock) or f"{exc.strerror or exc}: choose another folder"
        raise CheckpointError(f"cannot write in {folder}: {problem}") from None


def release(folder: Path, mine: dict) -> None:
    """Remove the lock, if it is still this run's (a lock taken over by mistake stays the other's)."""
    lock = folder / LOCK_FILE
    if (_read_lock(lock) or {}).get("token") == mine["token"]:
        lock.unlink(missing_ok=True)


@contextlib.contextmanager
def run_lock(folder: Path, proc: Process) -> Iterator[None]:
    """Hold `folder`'s lock for the block, released at its end, after an error or Ctrl-C too. Under
    torchrun rank 0 takes it and the others only learn whether it could; a folder this made and
    left empty (the run failed before writing anything) is removed again."""
    made, mine, error = not folder.exists(), None, None
    if proc.is_main:
        try:
            mine = acquire(folder)
        except CheckpointError as exc:
            error = exc
    if proc.anyone(error is not None):  # every process stops, not rank 0 alone
        raise error or CheckpointError(f"{folder}: rank 0 could not take this checkpoint folder (it says why)")
    try:
        yield
    finally:
        if mine is not None:
            release(folder, mine)
            if made and not any(folder.iterdir()):
                with contextlib.suppress(OSError):
                    folder.rmdir()
